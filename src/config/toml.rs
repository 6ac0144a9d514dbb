//! Reading a [`Config`] from TOML (cargo feature `toml`).
//!
//! The text is parsed into a [`::toml::Table`] and walked by hand, without serde derive, so
//! that every unknown key and every value of the wrong type is reported with its full TOML
//! path. The layout (see `docs/config.md`):
//!
//! ```text
//! shards, placement, shutdown_timeout_ms      top level
//! [shard]          knobs for every shard      (ShardKey::toml_key, not in steal)
//! [shard.steal]    steal knobs for every shard
//! [shard.N]        knobs for shard N          (N in canonical decimal: `1`, not `01`)
//! [shard.N.steal]  steal knobs for shard N
//! ```
//!
//! Keys are walked in the table's order (alphabetical), so when a text has several errors the
//! same one is reported every time.

use std::collections::BTreeMap;

use ::toml::{Table, Value};

use super::{
    Config, ConfigError, ConfigErrorKind, Placement, Raw, ShardKey, ShardOverride,
    placement_by_name, shards_from_int, shutdown_timeout_from_ms,
};

/// Applies the TOML `text` to `config`.
pub(super) fn apply(config: &mut Config, text: &str) -> Result<(), ConfigError> {
    let table: Table = text
        .parse()
        .map_err(|err: ::toml::de::Error| parse_error(text, &err))?;
    for (key, value) in &table {
        match key.as_str() {
            "shards" => config.shards = shards(value)?,
            "placement" => config.placement = placement(value)?,
            "shutdown_timeout_ms" => {
                let ms = uint(value, key, "a non-negative integer (milliseconds)")?;
                config.shutdown_timeout = shutdown_timeout_from_ms(ms, key)?;
            }
            "shard" => {
                let mut defaults = ShardOverride::default();
                knobs(
                    table_of(value, key)?,
                    key,
                    &mut defaults,
                    Some(&mut config.overrides),
                )?;
                config.shard.apply(&defaults);
            }
            _ => return Err(unknown(key.clone())),
        }
    }
    Ok(())
}

/// Walks the knobs of `[shard]` (with `overrides`, which receives `[shard.N]`) or of
/// `[shard.N]` (without), storing them in `patch`. `prefix` is the table's path.
fn knobs(
    table: &Table,
    prefix: &str,
    patch: &mut ShardOverride,
    mut overrides: Option<&mut BTreeMap<usize, ShardOverride>>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let field = format!("{prefix}.{key}");
        if key == "steal" {
            for (steal_key, value) in table_of(value, &field)? {
                let field = format!("{field}.{steal_key}");
                let knob = find(steal_key, true).ok_or_else(|| unknown(field.clone()))?;
                store(knob, patch, value, &field)?;
            }
        } else if let Some(knob) = find(key, false) {
            store(knob, patch, value, &field)?;
        } else if let (Some(overrides), Some(id)) = (overrides.as_deref_mut(), shard_id(key)) {
            let sub = table_of(value, &field)?;
            knobs(sub, &field, overrides.entry(id).or_default(), None)?;
        } else {
            return Err(unknown(field));
        }
    }
    Ok(())
}

/// The shard knob named `key`, in the steal table or the shard table.
fn find(key: &str, in_steal: bool) -> Option<ShardKey> {
    ShardKey::ALL
        .into_iter()
        .find(|knob| knob.in_steal() == in_steal && knob.toml_key() == key)
}

/// A shard id written in canonical decimal (`0`, `17`; not `01` or `+1`).
fn shard_id(key: &str) -> Option<usize> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if canonical { key.parse().ok() } else { None }
}

/// Checks `value` against `knob` and stores it in `patch`.
fn store(
    knob: ShardKey,
    patch: &mut ShardOverride,
    value: &Value,
    field: &str,
) -> Result<(), ConfigError> {
    let expected = knob.knob().expected();
    let raw = match value {
        Value::Boolean(b) => Raw::Flag(*b),
        _ => Raw::Int(uint(value, field, expected)?),
    };
    knob.store(patch, raw, field)
}

/// `shards`: a count or `"auto"`.
fn shards(value: &Value) -> Result<Option<usize>, ConfigError> {
    const EXPECTED: &str = "a shard count or \"auto\"";
    match value {
        Value::String(s) if s == "auto" => Ok(None),
        Value::String(s) => Err(bad_value("shards", s, EXPECTED)),
        _ => Ok(Some(shards_from_int(
            uint(value, "shards", EXPECTED)?,
            "shards",
        )?)),
    }
}

/// `placement`: `"spread"`, `"pack"`, `"unpinned"` or an array of CPU ids.
fn placement(value: &Value) -> Result<Placement, ConfigError> {
    const EXPECTED: &str = "\"spread\", \"pack\", \"unpinned\" or an array of CPU ids";
    match value {
        Value::String(s) => placement_by_name(s).ok_or_else(|| bad_value("placement", s, EXPECTED)),
        Value::Array(cpus) => cpus
            .iter()
            .map(|cpu| {
                let id = uint(cpu, "placement", "a CPU id (non-negative integer)")?;
                usize::try_from(id).map_err(|_| {
                    ConfigError::new(
                        "placement",
                        ConfigErrorKind::OutOfRange {
                            value: id,
                            min: 0,
                            max: super::to_u64(usize::MAX),
                        },
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Placement::Fixed),
        other => Err(wrong_type("placement", EXPECTED, other)),
    }
}

/// A non-negative integer; anything else is a [`ConfigErrorKind::WrongType`].
fn uint(value: &Value, field: &str, expected: &'static str) -> Result<u64, ConfigError> {
    match value {
        Value::Integer(n) => u64::try_from(*n).map_err(|_| {
            ConfigError::new(
                field,
                ConfigErrorKind::WrongType {
                    expected,
                    found: "a negative integer",
                },
            )
        }),
        other => Err(wrong_type(field, expected, other)),
    }
}

fn table_of<'a>(value: &'a Value, field: &str) -> Result<&'a Table, ConfigError> {
    match value {
        Value::Table(table) => Ok(table),
        other => Err(wrong_type(field, "a table", other)),
    }
}

fn wrong_type(field: &str, expected: &'static str, found: &Value) -> ConfigError {
    let found = match found {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    };
    ConfigError::new(field, ConfigErrorKind::WrongType { expected, found })
}

fn bad_value(field: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::new(
        field,
        ConfigErrorKind::BadValue {
            value: value.to_owned(),
            expected,
        },
    )
}

fn unknown(field: String) -> ConfigError {
    ConfigError::new(field, ConfigErrorKind::UnknownKey)
}

/// A [`ConfigErrorKind::Parse`] error, located by line and column when the parser knows where.
fn parse_error(text: &str, err: &::toml::de::Error) -> ConfigError {
    let message = err.message().trim_end();
    let message = match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    };
    ConfigError::new("", ConfigErrorKind::Parse(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn err(text: &str) -> ConfigError {
        Config::from_toml_str(text).unwrap_err()
    }

    #[test]
    fn empty_text_is_the_default() {
        assert_eq!(Config::from_toml_str("").unwrap(), Config::new());
    }

    #[test]
    fn every_knob_reads_in_both_scopes() {
        for knob in ShardKey::ALL {
            let value = knob.non_default_text();
            let (table, key) = if knob.in_steal() {
                ("steal", knob.toml_key())
            } else {
                ("", knob.toml_key())
            };
            let (defaults, one) = if table.is_empty() {
                ("[shard]".to_owned(), "[shard.0]".to_owned())
            } else {
                (format!("[shard.{table}]"), format!("[shard.0.{table}]"))
            };
            let config = Config::from_toml_str(&format!("{defaults}\n{key} = {value}")).unwrap();
            assert_ne!(config.shard, Config::new().shard, "{knob:?}");
            assert!(config.overrides.is_empty());
            let config = Config::from_toml_str(&format!("{one}\n{key} = {value}")).unwrap();
            assert_eq!(config.shard, Config::new().shard, "{knob:?}");
            assert!(!config.overrides[&0].is_empty(), "{knob:?}");
        }
    }

    #[test]
    fn units() {
        let config = Config::from_toml_str(
            "shutdown_timeout_ms = 1500\n[shard]\ntimer_tick_us = 250\n[shard.steal]\n\
             search_before_park_us = 0",
        )
        .unwrap();
        assert_eq!(config.shutdown_timeout, Duration::from_millis(1500));
        assert_eq!(config.shard.timer_tick, Duration::from_micros(250));
        assert_eq!(config.shard.steal.search_before_park, Duration::ZERO);
    }

    #[test]
    fn shards_and_placement_forms() {
        let auto = Config::from_toml_str("shards = \"auto\"").unwrap();
        assert_eq!(auto.shards, None);
        let fixed = Config::from_toml_str("placement = [3, 1]").unwrap();
        assert_eq!(fixed.placement, Placement::Fixed(vec![3, 1]));
        let pack = Config::from_toml_str("placement = \"pack\"").unwrap();
        assert_eq!(pack.placement, Placement::Pack);

        let e = err("placement = \"Spread\"");
        assert_eq!(e.field(), "placement");
        assert!(matches!(e.kind(), ConfigErrorKind::BadValue { value, .. } if value == "Spread"));
        let e = err("placement = [0, \"1\"]");
        assert_eq!(e.field(), "placement");
        assert!(matches!(
            e.kind(),
            ConfigErrorKind::WrongType {
                found: "a string",
                ..
            }
        ));
        let e = err("shards = \"many\"");
        assert!(matches!(e.kind(), ConfigErrorKind::BadValue { .. }));
        let e = err("shards = -2");
        assert!(matches!(
            e.kind(),
            ConfigErrorKind::WrongType {
                found: "a negative integer",
                ..
            }
        ));
    }

    #[test]
    fn unknown_and_misplaced_keys() {
        for (text, field) in [
            (
                "[shard.steal]\nbatch_budget = 1",
                "shard.steal.batch_budget",
            ),
            ("[shard]\nbatch = 1", "shard.batch"),
            ("[shard.01]\ncpu = 1", "shard.01"),
            ("[shard.1.2]\ncpu = 1", "shard.1.2"),
            ("[shard.1.steal]\nnope = 1", "shard.1.steal.nope"),
            ("[steal]\nbatch = 1", "steal"),
        ] {
            let e = err(text);
            assert_eq!(e.field(), field, "{text}");
            assert!(matches!(e.kind(), ConfigErrorKind::UnknownKey), "{text}");
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (text, field, found) in [
            ("shard = 1", "shard", "an integer"),
            ("[shard]\nsteal = 1", "shard.steal", "an integer"),
            ("shard.2 = 5", "shard.2", "an integer"),
            (
                "[shard]\nring_capacity = \"1024\"",
                "shard.ring_capacity",
                "a string",
            ),
            (
                "[shard]\nring_capacity = true",
                "shard.ring_capacity",
                "a boolean",
            ),
            (
                "[shard.steal]\nmay_steal = 1",
                "shard.steal.may_steal",
                "an integer",
            ),
            (
                "[shard]\ntimer_tick_us = 1.5",
                "shard.timer_tick_us",
                "a float",
            ),
            (
                "shutdown_timeout_ms = [1]",
                "shutdown_timeout_ms",
                "an array",
            ),
            ("placement = { a = 1 }", "placement", "a table"),
        ] {
            let e = err(text);
            assert_eq!(e.field(), field, "{text}");
            assert!(
                matches!(e.kind(), ConfigErrorKind::WrongType { found: f, .. } if *f == found),
                "{text}: {:?}",
                e.kind()
            );
        }
    }

    #[test]
    fn parse_errors_carry_a_location() {
        let e = err("shards = 2\nplacement = \n");
        assert_eq!(e.field(), "");
        match e.kind() {
            ConfigErrorKind::Parse(message) => {
                assert!(message.starts_with("line 2, column "), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("config: invalid TOML: line 2"));
        // Duplicate keys are malformed TOML, not a silent last-one-wins.
        assert!(matches!(
            err("shards = 1\nshards = 2").kind(),
            ConfigErrorKind::Parse(_)
        ));
    }

    #[test]
    fn shard_ids() {
        assert_eq!(shard_id("0"), Some(0));
        assert_eq!(shard_id("17"), Some(17));
        assert_eq!(shard_id("017"), None);
        assert_eq!(shard_id("+1"), None);
        assert_eq!(shard_id(""), None);
        assert_eq!(shard_id("99999999999999999999999"), None);
    }
}
