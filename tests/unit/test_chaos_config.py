from valerix.inventory.chaos import ReserveChaos
from valerix.kit.chaos import ChaosConfig, ChaosSource, Gremlin, Schrodinger, read_raw


def test_defaults_are_off_and_env_values_are_parsed_and_clamped():
    assert not ChaosConfig.parse({}).gremlin and not ChaosConfig.parse({}).schrodinger
    config = ChaosConfig.parse({"GREMLIN_MODE": "TRUE", "GREMLIN_MIN_DELAY_MS": "5000", "GREMLIN_MAX_DELAY_MS": "2000",
                                "SCHRODINGER_CRASH_PROBABILITY": "7", "SCHRODINGER_FAILURE": "ERROR",
                                "GREMLIN_EVERY_N": "junk"})
    assert config.gremlin and (config.min_delay_ms, config.max_delay_ms) == (2000, 5000)
    assert config.crash_probability == 1.0 and config.failure == "error" and config.every_n == 0


def test_files_override_the_environment(tmp_path):
    (tmp_path / "GREMLIN_MODE").write_text("on\n")
    raw = read_raw(tmp_path, {"GREMLIN_MODE": "false", "SCHRODINGER_MODE": "true"})
    assert raw == {"GREMLIN_MODE": "on", "SCHRODINGER_MODE": "true"}


def test_the_source_rereads_the_directory_after_its_ttl(tmp_path):
    now = [0.0]
    source = ChaosSource(tmp_path, ttl=1.0, clock=lambda: now[0])
    assert not source.current().gremlin
    (tmp_path / "GREMLIN_MODE").write_text("true")
    now[0] = 0.5
    assert not source.current().gremlin
    now[0] = 1.0
    assert source.current().gremlin


def test_every_nth_call_is_delayed_deterministically():
    config = ChaosConfig(gremlin=True, min_delay_ms=2000, max_delay_ms=5000, every_n=5, gremlin_seed=7)
    gremlin = Gremlin()
    delays = [gremlin.delay_ms(config) for _ in range(20)]
    assert [i for i, d in enumerate(delays, 1) if d] == [5, 10, 15, 20]
    assert all(2000 <= d <= 5000 for d in delays if d)
    again = Gremlin()
    assert [again.delay_ms(config) for _ in range(20)] == delays


def test_schrodinger_strikes_at_its_probability():
    config = ChaosConfig(schrodinger=True, crash_probability=0.1, schrodinger_seed=1)
    s = Schrodinger()
    hits = sum(s.strikes(config) for _ in range(10_000))
    assert 850 < hits < 1150
    assert not Schrodinger().strikes(ChaosConfig())


def test_reserve_chaos_delays_and_dies_when_configured(tmp_path):
    for key, value in {"GREMLIN_MODE": "1", "GREMLIN_MIN_DELAY_MS": "2500", "GREMLIN_MAX_DELAY_MS": "2500",
                       "SCHRODINGER_MODE": "1", "SCHRODINGER_CRASH_PROBABILITY": "1"}.items():
        (tmp_path / key).write_text(value)
    died: list[bool] = []
    chaos = ReserveChaos(ChaosSource(tmp_path, ttl=0), die=lambda: died.append(True))
    assert chaos.delay_seconds() == 2.5
    assert chaos.answer_lost() is False and died == [True]
    (tmp_path / "SCHRODINGER_FAILURE").write_text("error")
    assert chaos.answer_lost() is True and died == [True]
    (tmp_path / "GREMLIN_MODE").write_text("0")
    (tmp_path / "SCHRODINGER_MODE").write_text("0")
    assert chaos.delay_seconds() == 0 and chaos.answer_lost() is False
