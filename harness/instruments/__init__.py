"""Lab instruments driven through pyvisa: the SCPI bench power supply (:mod:`.supply`), its
loopback TCP stand-in (:mod:`.sim_supply`) and the pyvisa-sim profile for CI (:mod:`.sim`)."""
