//! SIGINT and SIGTERM as flags: the handler only stores `true` (the one thing
//! that is safe in a signal handler); the executor, watching the flags before
//! every chunk, releases everything and the threads wind down. A second
//! signal, while the first is being handled, exits at once.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Sets `interrupt` on SIGINT and `terminate` on SIGTERM (they may be the
/// same flag); a second such signal exits with status 130 or 143. Unix
/// only; elsewhere a no-op.
///
/// # Errors
/// The handlers could not be installed.
pub fn stop_on_signals(
    interrupt: &Arc<AtomicBool>,
    terminate: &Arc<AtomicBool>,
) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;
        // The shutdown actions go first, so a second signal finds the flag set.
        flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(interrupt))?;
        flag::register_conditional_shutdown(SIGTERM, 143, Arc::clone(terminate))?;
        flag::register(SIGINT, Arc::clone(interrupt))?;
        flag::register(SIGTERM, Arc::clone(terminate))?;
    }
    #[cfg(not(unix))]
    {
        let _ = (interrupt, terminate);
    }
    Ok(())
}
