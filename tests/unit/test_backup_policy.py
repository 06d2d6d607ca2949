"""Pure backup policies with injected times: retention, bundle selection, the ledger's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from valerix.backup import bundle, ledger, retention, ship
from valerix.backup.snapshot import ID_FORMAT

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def every(step: timedelta, count: int, end: datetime = NOW) -> list[datetime]:
    return [end - step * i for i in range(count)]


def test_keeps_everything_younger_than_a_day():
    taken = every(timedelta(minutes=15), 96)          # 24 h of 15-min snapshots, all < 24 h old
    assert retention.to_keep(taken, NOW) == set(taken)


def test_older_than_a_day_keeps_the_newest_of_each_utc_day_for_fourteen_days():
    taken = every(timedelta(hours=6), 4 * 20)         # 20 days, four a day (04:00, 10:00, 16:00, 22:00)
    keep = retention.to_keep(taken, NOW)
    young = {t for t in taken if NOW - t < 24 * H}
    old = keep - young
    assert young <= keep
    assert all(t.hour == 22 for t in old)            # the newest of its day
    assert len({t.date() for t in old}) == len(old)  # one per day
    assert min(old) > NOW - timedelta(days=14)
    assert max(NOW - t for t in old) >= timedelta(days=13)
    dropped = set(taken) - keep
    assert any(NOW - t > timedelta(days=14) for t in dropped)
    assert any(t.date() == (NOW - 3 * 24 * H).date() and t.hour == 4 for t in dropped)
    yesterday = (NOW - 24 * H).date()                # its newest (22:00) is young: no extra one kept
    assert {t for t in keep if t.date() == yesterday} == {t for t in young if t.date() == yesterday}


def test_the_newest_snapshot_survives_even_when_everything_is_old():
    taken = every(24 * H, 3, end=NOW - timedelta(days=40))
    assert retention.to_keep(taken, NOW) == {max(taken)}
    assert retention.to_keep([], NOW) == set()


def test_policy_is_configurable():
    taken = every(H, 48)
    keep = retention.to_keep(taken, NOW, keep_all=2 * H, daily_days=1)
    assert keep == {NOW, NOW - H, datetime(2026, 11, 26, 23, 0, tzinfo=UTC)}  # + newest of yesterday


def test_retention_prune_deletes_only_what_the_policy_drops(tmp_path):
    ids = [t.strftime(ID_FORMAT) for t in every(timedelta(hours=12), 6)]
    for i in ids:
        (tmp_path / i).mkdir()
        (tmp_path / i / "manifest.json").write_text("{}")
    (tmp_path / "not-a-snapshot").mkdir()
    deleted = retention.prune(tmp_path, NOW, keep_all=24 * H, daily_days=14)
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert set(deleted) | set(remaining) == set(ids) | {"not-a-snapshot"}
    assert sorted(deleted) == sorted(ids[i] for i in (2, 4))  # the 10:00 ones of the two older days


def snap(t: datetime, size: int = 10) -> bundle.Candidate:
    return bundle.Candidate(t.strftime(ID_FORMAT), size)


def test_bundle_takes_every_snapshot_since_the_last_shipment():
    snaps = [snap(t) for t in every(timedelta(minutes=15), 8)]
    ids = sorted(s.id for s in snaps)
    assert bundle.select(snaps, None, 10_000) == ids
    assert bundle.select(snaps, ids[3], 10_000) == ids[4:]
    assert bundle.select(snaps, ids[-1], 10_000) == []


def test_bundle_thins_to_hourly_then_to_the_newest_when_too_large():
    snaps = [snap(t, 100) for t in every(timedelta(minutes=15), 12)]   # 3 hours, 1200 bytes
    hourly = bundle.select(snaps, None, 500)
    assert len(hourly) == 4 and max(hourly) == max(s.id for s in snaps)
    assert len({i[:11] for i in hourly}) == len(hourly)
    assert bundle.select(snaps, None, 150) == [max(s.id for s in snaps)]


def test_next_call_is_now_when_free_and_next_utc_midnight_when_spent():
    book: ledger.Ledger = {"days": {}, "lastShipped": None}
    assert ledger.next_call_allowed(book, NOW) == NOW
    for state in ledger.SPENT:
        book["days"][ledger.day_key(NOW)] = {"state": state}
        assert ledger.next_call_allowed(book, NOW) == datetime(2026, 11, 28, tzinfo=UTC)
        assert ledger.next_call_allowed(book, NOW + timedelta(days=1)) == NOW + timedelta(days=1)
    book["days"][ledger.day_key(NOW)] = {"state": "not_counted"}
    assert ledger.next_call_allowed(book, NOW) == NOW


def test_a_retry_after_longer_than_the_day_is_respected():
    later = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    refused = {"state": "refused", "retryUntil": later.isoformat()}
    book = {"days": {"2026-11-27": refused}, "lastShipped": None}
    assert ledger.next_call_allowed(book, NOW) == later


@pytest.mark.parametrize(("status", "headers", "expected"), [
    (201, {"Backup-Call-Counted": "true"}, "accepted"),
    (201, {}, "unknown"),                                    # accepted without the header: be careful
    (429, {"Retry-After": "60", "Backup-Call-Counted": "false"}, "refused"),
    (503, {"Backup-Call-Counted": "false"}, "not_counted"),
    (413, {"Backup-Call-Counted": "false"}, "not_counted"),
    (500, {}, "unknown"),
    (502, {"Backup-Call-Counted": "maybe"}, "unknown"),
])
def test_only_a_proof_from_the_service_frees_the_days_call(status, headers, expected):
    response = httpx.Response(status, headers=headers, json={"detail": "x"})
    state, outcome = ship._classify(response, NOW)
    assert state == expected
    if state == "refused":
        assert outcome["retryUntil"] == (NOW + timedelta(seconds=60)).isoformat()


@pytest.mark.parametrize(("raw", "seconds"), [("900", 900), ("15m", 900), ("PT15M", 900), ("00:15:00", 900),
                                              ("1h", 3600), ("2", 2)])
def test_snapshot_interval_accepts_the_usual_spellings(monkeypatch, raw, seconds):
    from valerix.backup.settings import BackupSettings

    monkeypatch.setenv("BACKUP_SNAPSHOT_INTERVAL", raw)
    assert BackupSettings().backup_snapshot_interval == timedelta(seconds=seconds)


@pytest.mark.parametrize("member", ["../evil.dump", "/etc/cron.d/x", "20261127T100000000000Z/../../x.dump",
                                    "20261127T100000000000Z/run.sh", "symlink"])
def test_a_bundle_with_a_hostile_member_is_refused_before_extracting(tmp_path, member):
    import io
    import tarfile

    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo(member)
        if member == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(bundle.BadBundle, match="unexpected member"):
        bundle.extract(bad, out)
    assert list(out.iterdir()) == []
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(bundle.BadBundle):
        bundle.extract(garbage, out)
