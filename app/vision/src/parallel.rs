//! Optional fan-out of independent jobs over a few named scoped threads.

use std::sync::Mutex;

/// Runs every job with `work`, on the calling thread plus up to `threads − 1`
/// named scoped helpers (`threads <= 1`: all inline, no thread is created).
/// Jobs are taken from a shared queue, so a helper that fails to spawn just
/// leaves its share to the others.
pub(crate) fn run_jobs<T: Send>(threads: usize, mut jobs: Vec<T>, work: impl Fn(T) + Sync) {
    let helpers = threads.min(jobs.len()).saturating_sub(1);
    if helpers == 0 {
        jobs.into_iter().for_each(work);
        return;
    }
    jobs.reverse(); // popped from the back: keep the original order
    let queue = Mutex::new(jobs);
    // A poisoned queue means a job panicked; the scope re-raises that panic.
    let next = || queue.lock().ok().and_then(|mut q| q.pop());
    let drain = || {
        while let Some(job) = next() {
            work(job);
        }
    };
    std::thread::scope(|scope| {
        for i in 1..=helpers {
            // Real-time threads are named (ARCHITECTURE.md, "Threads").
            let spawned = std::thread::Builder::new()
                .name(format!("lumine-vision-{i}"))
                .spawn_scoped(scope, drain);
            if spawned.is_err() {
                break;
            }
        }
        drain();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_job_once() {
        for threads in [0, 1, 2, 4] {
            let mut hits = [0u8; 37];
            let jobs: Vec<&mut u8> = hits.iter_mut().collect();
            let count = AtomicUsize::new(0);
            run_jobs(threads, jobs, |h| {
                *h += 1;
                count.fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|&h| h == 1));
            assert_eq!(count.load(Ordering::Relaxed), 37);
        }
    }
}
