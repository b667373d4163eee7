//! Raising the executor thread's scheduling priority, best effort.
//!
//! Real-time scheduling (`SCHED_FIFO`) keeps the 33 ms boundaries tight on a
//! loaded machine but needs privileges (root or `CAP_SYS_NICE`); without
//! them we fall back to the highest normal priority (nice -20, also
//! privileged), then to leaving it as is. The outcome is reported, never an
//! error: the executor works at any priority, only less precisely.

use thread_priority::ThreadPriority;

/// Raises the calling thread's priority as far as allowed; says what it got.
pub(crate) fn raise_current_thread() -> String {
    #[cfg(unix)]
    {
        use thread_priority::unix::{
            RealtimeThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        // A modest real-time priority: above every normal thread, below the
        // kernel's own real-time helpers.
        if let Ok(value) = thread_priority::ThreadPriorityValue::try_from(10u8) {
            let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
            if set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                fifo,
            )
            .is_ok()
            {
                return "real-time (SCHED_FIFO)".to_owned();
            }
        }
    }
    match thread_priority::set_current_thread_priority(ThreadPriority::Max) {
        Ok(()) => "highest normal priority".to_owned(),
        Err(err) => format!("default priority (could not raise it: {err:?})"),
    }
}
