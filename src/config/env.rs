//! `COREACTOR_*` environment overrides.
//!
//! Grammar of a variable name (everything else outside the `COREACTOR_` prefix is ignored):
//!
//! ```text
//! COREACTOR_SHARDS                 count | auto
//! COREACTOR_PLACEMENT              spread | pack | unpinned | cpu{,cpu}
//! COREACTOR_SHUTDOWN_TIMEOUT_MS    milliseconds
//! COREACTOR_SHARD_<KEY>            defaults for every shard
//! COREACTOR_SHARD<N>_<KEY>         shard N only (N in canonical decimal: no sign, no leading 0)
//! ```
//!
//! `<KEY>` is a [`ShardKey::env_key`]. Any other `COREACTOR_*` name is an
//! [`UnknownKey`](ConfigErrorKind::UnknownKey) error, so a typo never goes unnoticed. Errors
//! name the variable ([`ConfigError::env`]).

use super::{
    Config, ConfigError, ConfigErrorKind, Placement, Raw, ShardKey, ShardOverride,
    placement_by_name, shards_from_int, shutdown_timeout_from_ms,
};

/// Prefix of every variable this module reads.
const PREFIX: &str = "COREACTOR_";

/// The process's `COREACTOR_*` variables, refusing names or values that are not UTF-8 instead
/// of panicking like [`std::env::vars`].
pub(super) fn process_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let lossy_name = name.to_string_lossy();
        if !lossy_name.starts_with(PREFIX) {
            continue;
        }
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            return Err(bad_env(
                &lossy_name,
                &value.to_string_lossy(),
                "the variable's name or value is not valid UTF-8",
            ));
        };
        vars.push((name.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// Applies one variable to `config`; variables without the prefix are ignored.
pub(super) fn apply_var(config: &mut Config, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return Ok(());
    };
    match rest {
        "SHARDS" => {
            config.shards = if value.trim().eq_ignore_ascii_case("auto") {
                None
            } else {
                let n = parse_int(name, value, "expected a shard count or `auto`")?;
                Some(shards_from_int(n, name).map_err(as_env)?)
            };
        }
        "PLACEMENT" => config.placement = parse_placement(name, value)?,
        // Read by the shard clock (`shard::tsc`) once per process, not part of a `Config`.
        "NO_TSC" => {}
        "SHUTDOWN_TIMEOUT_MS" => {
            let ms = parse_int(name, value, "expected a timeout in milliseconds")?;
            config.shutdown_timeout = shutdown_timeout_from_ms(ms, name).map_err(as_env)?;
        }
        _ => {
            let (shard, key) = shard_key(rest).ok_or_else(|| unknown(name))?;
            let raw = if key.is_flag() {
                Raw::Flag(parse_flag(name, value)?)
            } else {
                Raw::Int(parse_int(name, value, key.knob().expected())?)
            };
            match shard {
                None => {
                    let mut patch = ShardOverride::default();
                    key.store(&mut patch, raw, name).map_err(as_env)?;
                    config.shard.apply(&patch);
                }
                Some(id) => {
                    let patch = config.overrides.entry(id).or_default();
                    key.store(patch, raw, name).map_err(as_env)?;
                }
            }
        }
    }
    Ok(())
}

/// Splits `SHARD_<KEY>` into `(None, key)` and `SHARD<N>_<KEY>` into `(Some(N), key)`.
fn shard_key(rest: &str) -> Option<(Option<usize>, ShardKey)> {
    let after = rest.strip_prefix("SHARD")?;
    let (shard, key) = if let Some(key) = after.strip_prefix('_') {
        (None, key)
    } else {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let (number, key) = after.split_at(digits);
        let key = key.strip_prefix('_')?;
        let canonical = !number.is_empty() && (number == "0" || !number.starts_with('0'));
        if !canonical {
            return None;
        }
        (Some(number.parse().ok()?), key)
    };
    let key = ShardKey::ALL.into_iter().find(|k| k.env_key() == key)?;
    Some((shard, key))
}

/// Re-labels a range error from a shared checker as coming from the environment.
fn as_env(err: ConfigError) -> ConfigError {
    let field = err.field().to_owned();
    ConfigError::env(field, err.into_kind())
}

fn unknown(name: &str) -> ConfigError {
    ConfigError::env(name, ConfigErrorKind::UnknownKey)
}

fn bad_env(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::env(
        name,
        ConfigErrorKind::BadEnv {
            var: name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        },
    )
}

/// A non-negative decimal integer; surrounding whitespace is ignored.
fn parse_int(name: &str, value: &str, expected: &str) -> Result<u64, ConfigError> {
    let trimmed = value.trim();
    // `u64::from_str` accepts a leading `+`; a configuration value should not need one.
    if trimmed.starts_with('+') {
        return Err(bad_env(name, value, expected));
    }
    trimmed.parse().map_err(|_| bad_env(name, value, expected))
}

/// `true`/`false`/`1`/`0`, ASCII case-insensitive; surrounding whitespace is ignored.
fn parse_flag(name: &str, value: &str) -> Result<bool, ConfigError> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("true") || trimmed == "1" {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") || trimmed == "0" {
        Ok(false)
    } else {
        Err(bad_env(name, value, "expected `true`, `false`, `1` or `0`"))
    }
}

/// `spread`, `pack`, `unpinned` (ASCII case-insensitive) or a comma list of CPU ids.
fn parse_placement(name: &str, value: &str) -> Result<Placement, ConfigError> {
    const EXPECTED: &str = "expected `spread`, `pack`, `unpinned` or a comma-separated CPU list";
    let trimmed = value.trim();
    if let Some(placement) = placement_by_name(&trimmed.to_ascii_lowercase()) {
        return Ok(placement);
    }
    if trimmed.is_empty() {
        return Err(bad_env(name, value, EXPECTED));
    }
    let cpus = trimmed
        .split(',')
        .map(|cpu| cpu_id(name, value, cpu, EXPECTED))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Placement::Fixed(cpus))
}

/// One CPU id of a comma list.
fn cpu_id(name: &str, value: &str, item: &str, expected: &str) -> Result<usize, ConfigError> {
    let item = item.trim();
    if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_env(name, value, expected));
    }
    item.parse()
        .map_err(|_| bad_env(name, value, "a CPU id is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn apply(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::new().apply_env_from(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn shard_key_grammar() {
        assert_eq!(shard_key("SHARD_CPU"), Some((None, ShardKey::Cpu)));
        assert_eq!(shard_key("SHARD0_CPU"), Some((Some(0), ShardKey::Cpu)));
        assert_eq!(
            shard_key("SHARD12_STEAL_BATCH"),
            Some((Some(12), ShardKey::StealBatch))
        );
        assert_eq!(shard_key("SHARD01_CPU"), None);
        assert_eq!(shard_key("SHARD_1_CPU"), None);
        assert_eq!(shard_key("SHARD1CPU"), None);
        assert_eq!(shard_key("SHARD1_"), None);
        assert_eq!(shard_key("SHARD_batch_budget"), None);
        assert_eq!(shard_key("SHARD99999999999999999999999_CPU"), None);
    }

    #[test]
    fn every_key_is_reachable() {
        for key in ShardKey::ALL {
            let name = format!("COREACTOR_SHARD_{}", key.env_key());
            let value = key.non_default_text();
            let config = apply(&[(&name, value)]).unwrap();
            assert_ne!(config.shard, Config::new().shard, "{name}");
        }
    }

    #[test]
    fn top_level_variables() {
        let config = apply(&[
            ("COREACTOR_SHARDS", " 3 "),
            ("COREACTOR_PLACEMENT", "0, 1,1"),
            ("COREACTOR_SHUTDOWN_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        assert_eq!(config.shards, Some(3));
        assert_eq!(config.placement, Placement::Fixed(vec![0, 1, 1]));
        assert_eq!(config.shutdown_timeout, Duration::from_millis(250));

        let auto = apply(&[("COREACTOR_SHARDS", "2"), ("COREACTOR_SHARDS", "AUTO")]).unwrap();
        assert_eq!(auto.shards, None);
        for (text, placement) in [
            ("spread", Placement::Spread),
            ("Pack", Placement::Pack),
            ("unpinned", Placement::Unpinned),
        ] {
            let config = apply(&[("COREACTOR_PLACEMENT", text)]).unwrap();
            assert_eq!(config.placement, placement);
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("COREACTOR_SHARDS", "two"),
            ("COREACTOR_SHARDS", "-1"),
            ("COREACTOR_SHARDS", "+2"),
            ("COREACTOR_PLACEMENT", ""),
            ("COREACTOR_PLACEMENT", "0,,1"),
            ("COREACTOR_PLACEMENT", "0,x"),
            ("COREACTOR_PLACEMENT", "0,-1"),
            ("COREACTOR_SHARD_STEAL_MAY_STEAL", "yes"),
            ("COREACTOR_SHARD2_TIMER_TICK_US", "1ms"),
            ("COREACTOR_SHUTDOWN_TIMEOUT_MS", "5s"),
        ] {
            let err = apply(&[(name, value)]).unwrap_err();
            assert_eq!(err.field(), name);
            assert!(err.is_from_env());
            match err.kind() {
                ConfigErrorKind::BadEnv { var, value: v, .. } => {
                    assert_eq!((var.as_str(), v.as_str()), (name, value));
                }
                other => panic!("{name}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn range_errors_name_the_variable() {
        let err = apply(&[("COREACTOR_SHARD3_RING_CAPACITY", "1000")]).unwrap_err();
        assert_eq!(err.field(), "COREACTOR_SHARD3_RING_CAPACITY");
        assert!(err.is_from_env());
        assert!(matches!(
            err.kind(),
            ConfigErrorKind::NotPowerOfTwo { value: 1000 }
        ));
        assert_eq!(
            err.to_string(),
            "environment variable `COREACTOR_SHARD3_RING_CAPACITY`: 1000 is not a power of two"
        );
        let err = apply(&[("COREACTOR_SHARDS", "0")]).unwrap_err();
        assert_eq!(err.field(), "COREACTOR_SHARDS");
        assert!(matches!(err.kind(), ConfigErrorKind::Zero));
    }

    #[test]
    fn other_variables_are_ignored() {
        let config = apply(&[
            ("HOME", "/root"),
            ("coreactor_shards", "x"),
            ("COREACTOR", "1"),
        ])
        .unwrap();
        assert_eq!(config, Config::new());
    }

    #[test]
    fn process_vars_only_returns_prefixed() {
        // Reads the real environment without changing it; whatever is set, only prefixed
        // names come back.
        if let Ok(vars) = process_vars() {
            assert!(vars.iter().all(|(name, _)| name.starts_with(PREFIX)));
        }
    }
}
