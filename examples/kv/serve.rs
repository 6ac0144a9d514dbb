//! `--serve`: run the engine for real clients until SIGINT or SIGTERM, then stop gracefully
//! (stop accepting, write out and sync every log, shut the runtime down).

use super::signal;
use super::wiring::{Engine, EngineConfig};
use std::error::Error;
use std::net::SocketAddr;

/// Serves until interrupted. `announce` is called with the listening address once the engine
/// accepts connections (every partition replayed).
///
/// # Errors
///
/// A start failure, or a flush or shutdown failure at the end.
pub fn serve(cfg: EngineConfig, announce: impl FnOnce(SocketAddr)) -> Result<(), Box<dyn Error>> {
    let mut signals = signal::install()?;
    let engine = Engine::start(cfg)?;
    for s in engine.recovered() {
        let r = s.recovery;
        eprintln!(
            "kv: shard {}: replayed {} records ({} bytes), {} keys, {} bytes of torn tail cut",
            s.shard, r.records, r.bytes, r.keys, r.truncated
        );
    }
    announce(engine.addr());
    signals.wait()?;
    eprintln!("kv: interrupted; flushing and shutting down");
    engine.shutdown()?;
    eprintln!("kv: clean shutdown");
    Ok(())
}
