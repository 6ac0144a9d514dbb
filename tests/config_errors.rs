//! Configuration errors name the field and say what is wrong; good configurations round-trip.
//!
//! One test per error kind asserts the exact field and kind. CPU lists are mocked with
//! `resolve_with_cpus` and the environment with `apply_env_from`, so nothing here depends on the
//! machine or on the process environment.

// Some imports serve only the TOML tests.
#![cfg_attr(not(feature = "toml"), allow(unused_imports))]

use std::error::Error as _;
use std::time::Duration;

use coreactor::config::{
    Config, ConfigError, ConfigErrorKind, DEFAULT_BATCH_BUDGET, DEFAULT_INJECT_CAPACITY,
    DEFAULT_RING_CAPACITY, Placement, ResolvedShard, ShardConfig, StealConfig,
    default_ring_capacity,
};

const TWO_CPUS: &[usize] = &[0, 1];

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn shards(n: usize) -> Config {
    Config {
        shards: Some(n),
        ..Config::new()
    }
}

#[cfg(feature = "toml")]
fn toml_err(text: &str) -> ConfigError {
    Config::from_toml_str(text).expect_err(text)
}

// ---------------------------------------------------------------------------------------------
// One test per error kind.
// ---------------------------------------------------------------------------------------------

#[test]
fn zero_shards() {
    let err = shards(0).resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shards");
    assert!(matches!(err.kind(), ConfigErrorKind::Zero));
    assert_eq!(err.to_string(), "config field `shards`: must not be zero");
    assert!(shards(0).validate().is_err());
}

#[cfg(feature = "toml")]
#[test]
fn zero_shards_in_toml() {
    let err = toml_err("shards = 0");
    assert_eq!(err.field(), "shards");
    assert!(matches!(err.kind(), ConfigErrorKind::Zero));
}

#[test]
fn zero_in_a_shard_knob() {
    let mut config = Config::new();
    config.shard.steal.batch = 0;
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.steal.batch");
    assert!(matches!(err.kind(), ConfigErrorKind::Zero));
}

#[test]
fn bad_cpu_in_override() {
    let mut config = shards(2);
    config.overrides.entry(1).or_default().cpu = Some(5);
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.1.cpu");
    match err.kind() {
        ConfigErrorKind::NoSuchCpu { cpu, available } => {
            assert_eq!(*cpu, 5);
            assert_eq!(available, TWO_CPUS);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_cpu_in_defaults_and_fixed_placement() {
    let mut config = shards(2);
    config.shard.cpu = Some(2);
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.cpu");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::NoSuchCpu { cpu: 2, .. }
    ));

    let config = Config {
        placement: Placement::Fixed(vec![0, 3]),
        ..shards(2)
    };
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "placement");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::NoSuchCpu { cpu: 3, .. }
    ));
    // The same configuration is fine where CPU 3 exists.
    assert!(config.resolve_with_cpus(&[0, 3]).is_ok());
}

#[test]
fn no_cpus() {
    let err = shards(1).resolve_with_cpus(&[]).unwrap_err();
    assert_eq!(err.field(), "placement");
    assert!(matches!(err.kind(), ConfigErrorKind::NoCpus));
    assert_eq!(
        err.to_string(),
        "config field `placement`: no CPU is available to place shards on"
    );
}

#[cfg(feature = "toml")]
#[test]
fn ring_not_power_of_two() {
    let err = toml_err("shards = 2\n[shard.1]\nring_capacity = 1000");
    assert_eq!(err.field(), "shard.1.ring_capacity");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::NotPowerOfTwo { value: 1000 }
    ));
    assert_eq!(
        err.to_string(),
        "config field `shard.1.ring_capacity`: 1000 is not a power of two"
    );
}

#[test]
fn ring_not_power_of_two_in_code() {
    let mut config = Config::new();
    config.shard.ring_capacity = Some(3000);
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.ring_capacity");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::NotPowerOfTwo { value: 3000 }
    ));
}

#[test]
fn out_of_range() {
    let mut config = Config::new();
    config.shard.batch_budget = 100_000;
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.batch_budget");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OutOfRange {
            value: 100_000,
            min: 1,
            max: 65_536
        }
    ));
    assert_eq!(
        err.to_string(),
        "config field `shard.batch_budget`: 100000 is out of the valid range 1..=65536"
    );

    let mut config = shards(4);
    config.overrides.entry(3).or_default().timer_tick = Some(Duration::from_micros(5));
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.3.timer_tick_us");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OutOfRange {
            value: 5,
            min: 10,
            max: 1_000_000
        }
    ));
}

#[cfg(feature = "toml")]
#[test]
fn inject_capacity_must_be_a_power_of_two() {
    let err = toml_err("[shard]\ninject_capacity = 1000");
    assert_eq!(err.field(), "shard.inject_capacity");
    assert!(
        matches!(err.kind(), ConfigErrorKind::NotPowerOfTwo { .. }),
        "{err}"
    );
    let config = Config::from_toml_str("shards = 2\n[shard.0]\ninject_capacity = 64").unwrap();
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved[0].inject_capacity, 64);
    assert_eq!(resolved[1].inject_capacity, DEFAULT_INJECT_CAPACITY);
}

#[cfg(feature = "toml")]
#[test]
fn inject_pacing_is_read_and_checked() {
    let err = toml_err("[shard.1]\ninject_pacing_us = 1001");
    assert_eq!(err.field(), "shard.1.inject_pacing_us");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OutOfRange {
            value: 1001,
            min: 0,
            max: 1000
        }
    ));
    let config = Config::from_toml_str(
        "shards = 2\n[shard]\ninject_pacing_us = 0\n[shard.1]\ninject_pacing_us = 1000",
    )
    .unwrap();
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved[0].inject_pacing, Duration::ZERO);
    assert_eq!(resolved[1].inject_pacing, Duration::from_millis(1));
    assert_eq!(
        ShardConfig::default().inject_pacing,
        coreactor::config::DEFAULT_INJECT_PACING
    );
}

#[cfg(feature = "toml")]
#[test]
fn prefault_rings_is_read_and_checked() {
    let err = toml_err("[shard.1]\nprefault_rings = 1");
    assert_eq!(err.field(), "shard.1.prefault_rings");
    let config = Config::from_toml_str(
        "shards = 2\n[shard]\nprefault_rings = true\n[shard.1]\nprefault_rings = false",
    )
    .unwrap();
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert!(resolved[0].prefault_rings);
    assert!(!resolved[1].prefault_rings);
    assert!(!ShardConfig::default().prefault_rings, "off by default");
}

#[cfg(feature = "toml")]
#[test]
fn spin_before_yield_is_read_and_checked() {
    let err = toml_err("[shard.1]\nspin_before_yield_us = 1000001");
    assert_eq!(err.field(), "shard.1.spin_before_yield_us");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OutOfRange {
            value: 1_000_001,
            min: 0,
            max: 1_000_000
        }
    ));
    let config = Config::from_toml_str(
        "shards = 2\n[shard]\nspin_before_yield_us = 0\n[shard.1]\nspin_before_yield_us = 7",
    )
    .unwrap();
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved[0].spin_before_yield, Duration::ZERO);
    assert_eq!(resolved[1].spin_before_yield, Duration::from_micros(7));
}

#[cfg(feature = "toml")]
#[test]
fn out_of_range_in_toml() {
    let err = toml_err("[shard]\nspin_before_park_us = 2000000");
    assert_eq!(err.field(), "shard.spin_before_park_us");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OutOfRange {
            value: 2_000_000,
            min: 0,
            max: 1_000_000
        }
    ));
}

#[cfg(feature = "toml")]
#[test]
fn unknown_key_at_top_level() {
    let err = toml_err("shards = 2\nshard_count = 2");
    assert_eq!(err.field(), "shard_count");
    assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey));
}

#[cfg(feature = "toml")]
#[test]
fn unknown_key_in_shard() {
    let err = toml_err("[shard]\nring_capacty = 8");
    assert_eq!(err.field(), "shard.ring_capacty");
    assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey));
    assert_eq!(
        err.to_string(),
        "config field `shard.ring_capacty`: unknown key (misspelt?)"
    );

    let err = toml_err("[shard.steal]\nbatches = 8");
    assert_eq!(err.field(), "shard.steal.batches");
    assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey));
}

#[cfg(feature = "toml")]
#[test]
fn unknown_key_in_numbered_shard() {
    let err = toml_err("[shard.3]\nbatch_budgets = 8");
    assert_eq!(err.field(), "shard.3.batch_budgets");
    assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey));

    let err = toml_err("[shard.3.steal]\nmay_steel = false");
    assert_eq!(err.field(), "shard.3.steal.may_steel");
    assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey));
}

#[cfg(feature = "toml")]
#[test]
fn wrong_type() {
    let err = toml_err("[shard]\nbatch_budget = \"64\"");
    assert_eq!(err.field(), "shard.batch_budget");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::WrongType {
            expected: "a non-negative integer",
            found: "a string"
        }
    ));
    assert_eq!(
        err.to_string(),
        "config field `shard.batch_budget`: expected a non-negative integer, found a string"
    );

    let err = toml_err("[shard.0.steal]\nmay_be_stolen = \"no\"");
    assert_eq!(err.field(), "shard.0.steal.may_be_stolen");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::WrongType {
            expected: "a boolean",
            found: "a string"
        }
    ));

    let err = toml_err("shutdown_timeout_ms = -1");
    assert_eq!(err.field(), "shutdown_timeout_ms");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::WrongType {
            found: "a negative integer",
            ..
        }
    ));
}

#[cfg(feature = "toml")]
#[test]
fn bad_value() {
    let err = toml_err("placement = \"spred\"");
    assert_eq!(err.field(), "placement");
    assert!(matches!(err.kind(), ConfigErrorKind::BadValue { value, .. } if value == "spred"));
}

#[cfg(feature = "toml")]
#[test]
fn parse_error() {
    let err = toml_err("shards = 2\nplacement = [0, 1\n");
    assert_eq!(err.field(), "");
    assert!(matches!(err.kind(), ConfigErrorKind::Parse(message) if message.starts_with("line ")));
    assert!(err.to_string().starts_with("config: invalid TOML: line "));
}

#[cfg(feature = "toml")]
#[test]
fn io_error_names_the_file() {
    let path = std::env::temp_dir().join(format!(
        "coreactor-config-errors-{}-missing.toml",
        std::process::id()
    ));
    let err = Config::from_toml_file(&path).unwrap_err();
    assert_eq!(err.field(), "");
    assert_eq!(err.file(), Some(path.as_path()));
    match err.kind() {
        ConfigErrorKind::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(err.source().is_some());
    assert!(err.to_string().starts_with(&format!(
        "config file `{}`: cannot be read: ",
        path.display()
    )));
}

#[cfg(feature = "toml")]
#[test]
fn file_errors_carry_the_path() {
    let path = std::env::temp_dir().join(format!(
        "coreactor-config-errors-{}-bad.toml",
        std::process::id()
    ));
    std::fs::write(&path, "[shard]\nio_events = 0\n").unwrap();
    let result = Config::from_toml_file(&path);
    std::fs::remove_file(&path).unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.field(), "shard.io_events");
    assert!(matches!(err.kind(), ConfigErrorKind::Zero));
    assert_eq!(err.file(), Some(path.as_path()));
    assert!(err.source().is_none());
    assert_eq!(
        err.to_string(),
        format!(
            "config field `shard.io_events` in `{}`: must not be zero",
            path.display()
        )
    );
}

#[test]
fn bad_env_value() {
    let err = Config::new()
        .apply_env_from(vars(&[("COREACTOR_SHARD_BATCH_BUDGET", "lots")]))
        .unwrap_err();
    assert_eq!(err.field(), "COREACTOR_SHARD_BATCH_BUDGET");
    assert!(err.is_from_env());
    match err.kind() {
        ConfigErrorKind::BadEnv { var, value, reason } => {
            assert_eq!(var, "COREACTOR_SHARD_BATCH_BUDGET");
            assert_eq!(value, "lots");
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }

    let err = Config::new()
        .apply_env_from(vars(&[("COREACTOR_SHARDS", "two")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable `COREACTOR_SHARDS`: `two` is not valid: \
         expected a shard count or `auto`"
    );
}

#[test]
fn the_clock_switch_is_not_an_unknown_variable() {
    let config = Config::new()
        .apply_env_from(vars(&[("COREACTOR_NO_TSC", "1")]))
        .expect("COREACTOR_NO_TSC is known");
    assert_eq!(config, Config::new(), "and changes nothing in a Config");
}

#[test]
fn env_value_out_of_range_names_the_variable() {
    let err = Config::new()
        .apply_env_from(vars(&[("COREACTOR_SHARD1_RING_CAPACITY", "1000")]))
        .unwrap_err();
    assert_eq!(err.field(), "COREACTOR_SHARD1_RING_CAPACITY");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::NotPowerOfTwo { value: 1000 }
    ));
}

#[test]
fn unknown_env_var() {
    for name in [
        "COREACTOR_SHRADS",
        "COREACTOR_SHARD_RING_CAPACTY",
        "COREACTOR_SHARD1_NOPE",
        "COREACTOR_SHARD_STEAL",
        "COREACTOR_",
    ] {
        let err = Config::new()
            .apply_env_from(vars(&[(name, "1")]))
            .unwrap_err();
        assert_eq!(err.field(), name);
        assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey), "{name}");
    }
}

#[test]
fn override_for_missing_shard() {
    let mut config = shards(2);
    config.overrides.entry(2).or_default().batch_budget = Some(8);
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.2");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OverrideForMissingShard {
            shard: 2,
            shards: 2
        }
    ));
    assert_eq!(
        err.to_string(),
        "config field `shard.2`: overrides shard 2, but there are only 2 shards (ids 0..2)"
    );
}

#[test]
fn override_for_missing_shard_with_default_count() {
    // `shards = None` on a mocked 2-CPU machine means two shards.
    let mut config = Config::new();
    config.overrides.entry(5).or_default().cpu = Some(0);
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "shard.5");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::OverrideForMissingShard {
            shard: 5,
            shards: 2
        }
    ));
}

#[test]
fn placement_length_mismatch() {
    let config = Config {
        placement: Placement::Fixed(vec![0, 1]),
        ..shards(3)
    };
    let err = config.resolve_with_cpus(TWO_CPUS).unwrap_err();
    assert_eq!(err.field(), "placement");
    assert!(matches!(
        err.kind(),
        ConfigErrorKind::PlacementLength {
            expected: 3,
            got: 2
        }
    ));
}

#[test]
fn errors_are_ordinary_error_values() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<ConfigError>();
    // Boxed inside, so `Result<_, ConfigError>` stays small on every path that returns one.
    assert_eq!(
        std::mem::size_of::<ConfigError>(),
        std::mem::size_of::<usize>()
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------------------------

fn default_shard(id: usize, cpu: usize) -> ResolvedShard {
    let d = ShardConfig::default();
    ResolvedShard {
        id,
        cpu: Some(cpu),
        ring_capacity: d.ring_capacity.unwrap_or(default_ring_capacity(2)),
        mailbox_capacity: d.mailbox_capacity,
        inject_capacity: d.inject_capacity,
        batch_budget: d.batch_budget,
        spin_before_park: d.spin_before_park,
        spin_before_yield: d.spin_before_yield,
        inject_pacing: d.inject_pacing,
        timer_tick: d.timer_tick,
        io_events: d.io_events,
        max_actors: d.max_actors,
        prefault_rings: d.prefault_rings,
        steal: StealConfig::default(),
    }
}

#[test]
fn defaults_resolve() {
    let resolved = Config::default().resolve_with_cpus(&[4, 6]).unwrap();
    assert_eq!(resolved, [default_shard(0, 4), default_shard(1, 6)]);

    // And on this machine: one pinned shard per available core.
    let resolved = Config::new().resolve().unwrap();
    let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        resolved.len(),
        parallelism.min(coreactor::config::MAX_SHARDS)
    );
    assert!(resolved.iter().all(|shard| shard.cpu.is_some()));
}

#[test]
fn more_shards_than_cpus_wrap_round_robin() {
    let resolved = shards(5).resolve_with_cpus(TWO_CPUS).unwrap();
    let cpus: Vec<_> = resolved.iter().map(|shard| shard.cpu).collect();
    assert_eq!(cpus, [Some(0), Some(1), Some(0), Some(1), Some(0)]);
}

#[test]
fn per_shard_override_applies_to_that_shard_only() {
    let mut config = shards(3);
    let patch = config.overrides.entry(1).or_default();
    patch.cpu = Some(0);
    patch.batch_budget = Some(16);
    patch.steal.may_steal = Some(false);
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();

    let mut expected_1 = default_shard(1, 0);
    expected_1.batch_budget = 16;
    expected_1.steal.may_steal = false;
    assert_eq!(
        resolved,
        [default_shard(0, 0), expected_1, default_shard(2, 0)]
    );
}

#[cfg(feature = "toml")]
#[test]
fn per_shard_override_from_toml_applies_to_that_shard_only() {
    let config = Config::from_toml_str(
        "shards = 2\n[shard]\nbatch_budget = 32\n[shard.1]\nbatch_budget = 16\n\
         [shard.1.steal]\nbatch = 2",
    )
    .unwrap();
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved[0].batch_budget, 32);
    assert_eq!(resolved[1].batch_budget, 16);
    assert_eq!(resolved[0].steal.batch, 8);
    assert_eq!(resolved[1].steal.batch, 2);
}

#[cfg(feature = "toml")]
#[test]
fn env_overrides_toml() {
    let config = Config::from_toml_str(
        "shards = 4\nplacement = \"unpinned\"\n[shard]\nring_capacity = 256\nbatch_budget = 32\n\
         [shard.1]\nbatch_budget = 16",
    )
    .unwrap()
    .apply_env_from(vars(&[
        ("COREACTOR_SHARDS", "2"),
        ("COREACTOR_PLACEMENT", "1,0"),
        ("COREACTOR_SHARD_RING_CAPACITY", "2048"),
        // A default from the environment does not beat a per-shard override from the file...
        ("COREACTOR_SHARD_BATCH_BUDGET", "8"),
        // ...but a per-shard variable does.
        ("COREACTOR_SHARD0_STEAL_MAY_BE_STOLEN", "false"),
        ("COREACTOR_SHUTDOWN_TIMEOUT_MS", "100"),
        ("UNRELATED", "ignored"),
    ]))
    .unwrap();
    assert_eq!(config.shutdown_timeout, Duration::from_millis(100));
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[0].cpu, Some(1));
    assert_eq!(resolved[1].cpu, Some(0));
    assert!(resolved.iter().all(|shard| shard.ring_capacity == 2048));
    assert_eq!(resolved[0].batch_budget, 8);
    assert_eq!(resolved[1].batch_budget, 16);
    assert!(!resolved[0].steal.may_be_stolen);
    assert!(resolved[1].steal.may_be_stolen);
}

#[cfg(feature = "toml")]
#[test]
fn env_can_fix_what_toml_left_inconsistent() {
    // Cross-field checks wait for `resolve`, so the environment can still change the count.
    let config = Config::from_toml_str("shards = 2\n[shard.3]\ncpu = 1").unwrap();
    assert!(config.resolve_with_cpus(TWO_CPUS).is_err());
    let config = config
        .apply_env_from(vars(&[("COREACTOR_SHARDS", "4")]))
        .unwrap();
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved[3].cpu, Some(1));
}

#[test]
fn env_placement_and_auto() {
    let config = shards(3)
        .apply_env_from(vars(&[
            ("COREACTOR_SHARDS", "auto"),
            ("COREACTOR_PLACEMENT", "1,1,0"),
        ]))
        .unwrap();
    assert_eq!(config.shards, None);
    // A `None` count with a CPU list means one shard per listed CPU.
    let cpus: Vec<_> = config
        .resolve_with_cpus(TWO_CPUS)
        .unwrap()
        .iter()
        .map(|shard| shard.cpu)
        .collect();
    assert_eq!(cpus, [Some(1), Some(1), Some(0)]);
}

/// The full example in `docs/config.md` parses and means what the document says.
#[cfg(feature = "toml")]
#[test]
fn docs_example_parses() {
    let doc = include_str!("../docs/config.md");
    let start = doc
        .find("```toml\n")
        .expect("docs/config.md has a TOML example")
        + 8;
    let len = doc[start..]
        .find("```")
        .expect("the TOML example is closed");
    let config = Config::from_toml_str(&doc[start..start + len]).unwrap();

    assert_eq!(config.shards, Some(2));
    assert_eq!(config.placement, Placement::Spread);
    assert_eq!(config.shutdown_timeout, Duration::from_secs(5));
    assert_eq!(config.shard, ShardConfig::default());
    let resolved = config.resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved[0], default_shard(0, 0));
    assert_eq!(resolved[1].cpu, Some(1));
    assert_eq!(resolved[1].batch_budget, 4);
    assert!(!resolved[1].steal.may_steal);
    assert_eq!(resolved[1].ring_capacity, DEFAULT_RING_CAPACITY);
    assert_ne!(resolved[1].batch_budget, DEFAULT_BATCH_BUDGET);
}

#[cfg(feature = "toml")]
#[test]
fn toml_file_round_trip() {
    let path = std::env::temp_dir().join(format!(
        "coreactor-config-errors-{}-good.toml",
        std::process::id()
    ));
    std::fs::write(&path, "shards = 1\nplacement = [1]\n").unwrap();
    let result = Config::from_toml_file(&path);
    std::fs::remove_file(&path).unwrap();
    let resolved = result.unwrap().resolve_with_cpus(TWO_CPUS).unwrap();
    assert_eq!(resolved, [default_shard(0, 1)]);
}
