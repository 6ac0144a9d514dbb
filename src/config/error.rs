//! The configuration error: which field (or environment variable) holds an unusable value, and
//! what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration value that cannot be used, naming the field (or environment variable) that
/// holds it.
///
/// [`field`](Self::field) is the TOML path of the value (`shards`, `placement`,
/// `shard.ring_capacity`, `shard.3.batch_budget`, `shard.steal.batch`,
/// `shutdown_timeout_ms`), also for values set in code; for environment input it is the
/// variable's name (`COREACTOR_SHARD1_CPU`); it is empty for errors about a whole file
/// ([`Parse`](ConfigErrorKind::Parse), [`Io`](ConfigErrorKind::Io)).
///
/// # Examples
///
/// ```
/// use coreactor::config::{Config, ConfigErrorKind};
///
/// let mut config = Config::new();
/// config.shards = Some(2);
/// config.overrides.entry(1).or_default().ring_capacity = Some(1000);
/// let err = config.resolve_with_cpus(&[0, 1]).unwrap_err();
/// assert_eq!(err.field(), "shard.1.ring_capacity");
/// assert!(matches!(err.kind(), ConfigErrorKind::NotPowerOfTwo { value: 1000 }));
/// assert_eq!(
///     err.to_string(),
///     "config field `shard.1.ring_capacity`: 1000 is not a power of two"
/// );
/// ```
#[derive(Debug)]
pub struct ConfigError {
    // Boxed: errors are rare and cold, and a small error keeps every `Result` small.
    inner: Box<ErrorInner>,
}

#[derive(Debug)]
struct ErrorInner {
    field: String,
    kind: ConfigErrorKind,
    from_env: bool,
    file: Option<PathBuf>,
}

impl ConfigError {
    /// An error about the field at TOML path `field`.
    pub(crate) fn new(field: impl Into<String>, kind: ConfigErrorKind) -> Self {
        Self {
            inner: Box::new(ErrorInner {
                field: field.into(),
                kind,
                from_env: false,
                file: None,
            }),
        }
    }

    /// An error about the environment variable `var`.
    pub(crate) fn env(var: impl Into<String>, kind: ConfigErrorKind) -> Self {
        let mut err = Self::new(var, kind);
        err.inner.from_env = true;
        err
    }

    /// Records the file the offending value was read from.
    #[cfg(feature = "toml")]
    #[must_use]
    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        self.inner.file = Some(path.to_owned());
        self
    }

    /// The offending field's TOML path, or environment variable name; empty for errors about
    /// a whole file.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.inner.field
    }

    /// What is wrong with the value.
    #[must_use]
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.inner.kind
    }

    /// Consumes the error, returning what is wrong with the value.
    #[must_use]
    pub fn into_kind(self) -> ConfigErrorKind {
        self.inner.kind
    }

    /// Whether [`field`](Self::field) names an environment variable rather than a TOML path.
    #[must_use]
    pub fn is_from_env(&self) -> bool {
        self.inner.from_env
    }

    /// The file the value was read from, for errors from [`Config::from_toml_file`](super::Config::from_toml_file).
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ErrorInner {
            field,
            kind,
            from_env,
            file,
        } = &*self.inner;
        match (file, field.is_empty(), from_env) {
            (_, false, true) => write!(f, "environment variable `{field}`")?,
            (Some(file), false, false) => {
                write!(f, "config field `{field}` in `{}`", file.display())?;
            }
            (None, false, false) => write!(f, "config field `{field}`")?,
            (Some(file), true, _) => write!(f, "config file `{}`", file.display())?,
            (None, true, _) => f.write_str("config")?,
        }
        write!(f, ": {kind}")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            ConfigErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// What is wrong with a configuration value; see [`ConfigError`] for which field.
///
/// Ranges and values of durations are in the unit of their TOML key (`_us`: microseconds,
/// `_ms`: milliseconds), also for values set in code.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The value is zero and must not be (`shards = 0`, `batch_budget = 0`, an empty
    /// [`Placement::Fixed`](super::Placement::Fixed) list without a shard count).
    Zero,
    /// The value must be a power of two (ring capacities).
    NotPowerOfTwo {
        /// The rejected value.
        value: u64,
    },
    /// The value is outside `min..=max`.
    OutOfRange {
        /// The rejected value (durations in the field's unit, rounded away from the range).
        value: u64,
        /// Smallest valid value.
        min: u64,
        /// Largest valid value.
        max: u64,
    },
    /// A CPU that is not in the list of CPUs this process may use.
    NoSuchCpu {
        /// The rejected CPU id.
        cpu: usize,
        /// The CPUs that were available.
        available: Vec<usize>,
    },
    /// Shards need CPUs to be placed on, but the list of available CPUs is empty.
    NoCpus,
    /// A [`Placement::Fixed`](super::Placement::Fixed) list does not have one CPU per shard.
    PlacementLength {
        /// The shard count.
        expected: usize,
        /// The list's length.
        got: usize,
    },
    /// A TOML key or `COREACTOR_*` variable that does not exist (often a typo).
    UnknownKey,
    /// A TOML value of the wrong type.
    WrongType {
        /// What the field takes, e.g. `"a non-negative integer"`.
        expected: &'static str,
        /// What was found, e.g. `"a string"`.
        found: &'static str,
    },
    /// A TOML value of the right type that is not one of the accepted values
    /// (`placement = "sprad"`, `shards = "many"`).
    BadValue {
        /// The rejected value, as written.
        value: String,
        /// What the field accepts.
        expected: &'static str,
    },
    /// The TOML text is malformed; the message starts with the line and column.
    Parse(String),
    /// The configuration file could not be read.
    Io(std::io::Error),
    /// A `COREACTOR_*` variable whose value cannot be parsed.
    BadEnv {
        /// The variable's name.
        var: String,
        /// Its value (lossily decoded if it was not UTF-8).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A per-shard override for a shard id that does not exist.
    OverrideForMissingShard {
        /// The overridden shard id.
        shard: usize,
        /// The shard count; valid ids are `0..shards`.
        shards: usize,
    },
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero => f.write_str("must not be zero"),
            Self::NotPowerOfTwo { value } => write!(f, "{value} is not a power of two"),
            Self::OutOfRange { value, min, max } => {
                write!(f, "{value} is out of the valid range {min}..={max}")
            }
            Self::NoSuchCpu { cpu, available } => write!(
                f,
                "CPU {cpu} does not exist or this process may not run on it \
                 (available CPUs: {available:?})"
            ),
            Self::NoCpus => f.write_str("no CPU is available to place shards on"),
            Self::PlacementLength { expected, got } => write!(
                f,
                "lists {got} CPUs but there are {expected} shards (one CPU per shard)"
            ),
            Self::UnknownKey => f.write_str("unknown key (misspelt?)"),
            Self::WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::BadValue { value, expected } => {
                write!(f, "`{value}` is not valid; expected {expected}")
            }
            Self::Parse(message) => write!(f, "invalid TOML: {message}"),
            Self::Io(err) => write!(f, "cannot be read: {err}"),
            Self::BadEnv { value, reason, .. } => write!(f, "`{value}` is not valid: {reason}"),
            Self::OverrideForMissingShard { shard, shards } => write!(
                f,
                "overrides shard {shard}, but there are only {shards} shards (ids 0..{shards})"
            ),
        }
    }
}
