"""Emulator profiles: a catalogue record extended with emulator choices and family settings."""

from __future__ import annotations

import dataclasses

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.profiles import PROFILES, ModelProfile, profile
from devices.models import MODELS, Model
from harness import open_kkt
from harness.errors import UsageError


def test_every_catalogue_model_has_a_profile_with_its_identity() -> None:
    assert set(PROFILES) == set(MODELS)
    for model_id, record in MODELS.items():
        emulated = PROFILES[model_id]
        assert isinstance(emulated, Model)
        for field in dataclasses.fields(Model):
            assert getattr(emulated, field.name) == getattr(record, field.name), (model_id, field.name)


def test_a_dreamkas_emulator_starts_at_its_firmware_gate() -> None:
    assert [PROFILES[m].firmware for m in ("kf", "dkf", "start")] == ["2.26.0", "1.12.0", "10.50.1"]


@pytest.mark.parametrize("key", ["id", "family", "model_codes", "serial_prefixes", "extra", "nosuchsetting"])
def test_identity_and_unknown_keys_are_not_settings(key: str) -> None:
    with pytest.raises(ValueError, match=f"unknown profile setting '{key}' for model kf"):
        profile("kf").with_overrides({key: "1"})


def test_family_settings_are_checked_and_kept_in_extra() -> None:
    kf = profile("kf").with_overrides({"tax_mismatch_code": "param"})
    assert kf.setting("tax_mismatch_code") == "param" and profile("kf").setting("tax_mismatch_code") == "fn"
    with pytest.raises(ValueError, match="atol_sync_result"):  # an АТОЛ setting is not a Pirit one
        profile("kf").with_overrides({"atol_sync_result": "result"})
    assert profile("atol").with_overrides({"atol_sync_result": "result"}).setting("atol_sync_result") == "result"
    with pytest.raises(ValueError, match="atol_sync_result takes one of pending, result, not 'sync'"):
        profile("atol").with_overrides({"atol_sync_result": "sync"})


def test_settings_help_lists_choices_and_family_settings() -> None:
    names = profile("atol").settings_help()
    assert names["atol_sync_result"] == "pending" and names["auto_open_shift"] == "True"
    assert "id" not in names and "family" not in names


def test_the_sync_result_setting_reaches_the_atol_wire() -> None:
    with open_kkt("emulator:atol?atol_sync_result=result&transport=tcp", timeout_scale=0.3) as handle:
        handle.kkt.status()
        assert "RESULT: U err=0" in handle.trace.render()  # A3 with the result in the synchronous answer
    with open_kkt("emulator:atol?transport=tcp", timeout_scale=0.3) as handle:
        handle.kkt.status()
        assert "ASYNC_RESULT" in handle.trace.render()


def test_a_bad_setting_in_a_spec_is_one_usage_line() -> None:
    with pytest.raises(UsageError, match=r"^emulator:atol\?atol_sync_result=x: atol_sync_result takes one of"):
        with open_kkt("emulator:atol?atol_sync_result=x"):
            pass


def test_profile_of_copies_the_record_and_adds_choices() -> None:
    made = ModelProfile.of(MODELS["atol"], firmware="9.9.9", auto_open_shift=True)
    assert (made.id, made.model_code, made.firmware, made.auto_open_shift) == ("atol", 61, "9.9.9", True)
    with pytest.raises(ValueError, match="no firmware given"):
        ModelProfile.of(MODELS["atol"])


def test_emulator_handle_is_the_harness_view() -> None:
    emulator = build_emulator("dkf", {"serial": "0496040818"})
    assert (emulator.model.id, emulator.serial, emulator.fn_kind) == ("dkf", "0496040818", "fn36")
    assert emulator.control({"op": "paper", "state": "out"}) == {"ok": True, "paper": "out"}
    snapshot = emulator.snapshot()
    again = build_emulator("dkf")
    again.restore(snapshot)
    assert again.snapshot()["serial"] == "0496040818" and again.snapshot()["printer"]["paper"] == "out"
    with pytest.raises(ValueError, match="has no Dreamkas cloud link"):
        build_emulator("atol").attach_cloud("http://127.0.0.1:1")
