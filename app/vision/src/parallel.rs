//! Optional fan-out of independent jobs over a few named scoped threads.

use std::sync::Mutex;

/// Runs every job with `work`, on the calling thread plus up to
/// `states.len() − 1` named scoped helpers, each worker with its own
/// `states[i]` (one state, or fewer jobs than states: all inline, no thread
/// is created). Jobs are taken from a shared queue in order, so a helper
/// that starts late (the other core busy) or fails to spawn just leaves
/// more of them to the others.
pub(crate) fn run_jobs<T: Send, S: Send>(
    states: &mut [S],
    mut jobs: Vec<T>,
    work: impl Fn(&mut S, T) + Sync,
) {
    let workers = states.len().min(jobs.len());
    let Some((first, helpers)) = states[..workers].split_first_mut() else {
        return;
    };
    if helpers.is_empty() {
        jobs.into_iter().for_each(|job| work(first, job));
        return;
    }
    jobs.reverse(); // popped from the back: keep the original order
    let queue = Mutex::new(jobs);
    // A poisoned queue means a job panicked; the scope re-raises that panic.
    let next = || queue.lock().ok().and_then(|mut q| q.pop());
    let drain = |state: &mut S| {
        while let Some(job) = next() {
            work(state, job);
        }
    };
    std::thread::scope(|scope| {
        for (i, state) in helpers.iter_mut().enumerate() {
            // Real-time threads are named (ARCHITECTURE.md, "Threads").
            let spawned = std::thread::Builder::new()
                .name(format!("lumine-vision-{}", i + 1))
                .spawn_scoped(scope, || drain(state));
            if spawned.is_err() {
                break;
            }
        }
        drain(first);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_job_once() {
        for threads in [1, 2, 4] {
            let mut hits = [0u8; 37];
            let jobs: Vec<&mut u8> = hits.iter_mut().collect();
            let count = AtomicUsize::new(0);
            let mut states = vec![0usize; threads];
            run_jobs(&mut states, jobs, |done, h| {
                *h += 1;
                *done += 1;
                count.fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|&h| h == 1));
            assert_eq!(count.load(Ordering::Relaxed), 37);
            // Every job ran on exactly one worker's state.
            assert_eq!(states.iter().sum::<usize>(), 37);
        }
        // No state: nothing runs.
        run_jobs(&mut [] as &mut [usize], vec![1, 2], |_, _: i32| {
            panic!("no worker")
        });
    }
}
