//! Tensor-parallel partitions of the decoder: N rank graphs run in lock-step, one
//! named thread and one ONNX Runtime session per rank, the cross-rank reduction in
//! shared memory.
//!
//! `models/export/export.py --partitions N` writes `decoder.rank{r}.onnx` (Megatron
//! split: rank r holds KV heads `r*kv/N..(r+1)*kv/N` with their query heads, a
//! contiguous slice of the MLP units, and lm_head on rank 0 only). After o_proj and
//! after down_proj every rank holds a partial sum; the graphs reduce it with the
//! operator `ai.lumine.AllReduceSum` (2 per layer), which stock ONNX Runtime does not
//! have: [`AllReduceSum`] implements it as a custom operator registered from Rust, on
//! top of an [`AllReduceGroup`] shared by the ranks' threads.
//!
//! The reduction is deterministic: the last rank to arrive sums the N contributions
//! in rank order and every rank copies that one result, so all ranks keep bit-equal
//! residual streams.
//!
//! Failure handling: a rank whose run fails (or whose thread panics) *poisons* the
//! group, which wakes every rank waiting in a reduction with an error, so no rank
//! waits for a peer that will never come; cancellation ([`CancelToken`]) terminates
//! every rank's run and poisons the group as well. [`RankExecutor::forward`] waits
//! for every rank before it returns (no run outlives the call), reports the error
//! of the rank that failed first, and leaves the KV cache as it was. Dropping the
//! executor closes the job channels and joins the rank threads.
//!
//! A partitioned model's [`KvCache`] holds `num_layers * N` (key, value) pairs in
//! rank-major order, each with that rank's `kv_heads / N` heads: every cache edit
//! (truncate, eviction, re-rotation) works per tensor and needs no change.
//!
//! Only the thread-per-rank mode exists. The process-per-rank mode with NCCL for
//! GPUs is not built; on the CUDA provider the ranks run on devices
//! `device_id + r`, and the reduction reads and writes host copies of the partial
//! sums (ONNX Runtime copies a CPU custom operator's inputs and outputs).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use ort::operator::{
    ComputeContext, Kernel, KernelContext, Operator, OperatorDomain, OperatorInput, OperatorOutput,
};
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType};

use crate::error::EngineError;
use crate::kv_cache::KvCache;
use crate::manifest::Manifest;
use crate::model::CancelToken;
use crate::ort_library::OrtRuntime;
use crate::provider::{self, ProviderOptions};

/// The operator domain of the reduction.
pub const DOMAIN: &str = "ai.lumine";

/// The reduction operator's name in [`DOMAIN`].
pub const ALL_REDUCE_OP: &str = "AllReduceSum";

/// How often a rank waiting in a reduction looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// Why a reduction could not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReduceError {
    /// A rank failed (its own error or a peer's) and poisoned the group.
    #[error("rank {rank} failed: {message}")]
    Poisoned {
        /// The rank that failed first.
        rank: usize,
        /// Its error.
        message: String,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ranks deposit their partial sums.
    Gathering,
    /// The sum is ready; ranks copy it out.
    Scattering,
}

#[derive(Debug)]
struct GroupState {
    phase: Phase,
    arrived: usize,
    departed: usize,
    slots: Vec<Vec<f32>>,
    sum: Vec<f32>,
    /// Completed reductions since the last reset.
    round: u64,
    /// Reductions each rank entered since the last reset.
    entered: Vec<usize>,
    poison: Option<(usize, String)>,
    cancel: Option<CancelToken>,
    #[cfg(test)]
    fault: Option<Fault>,
}

/// A fault injected into a rank's reduction, for tests of the failure paths.
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// The rank that misbehaves.
    pub rank: usize,
    /// At its reduction number `at` (0-based, counted since the last reset).
    pub at: usize,
    /// `None`: it fails. `Some(tx)`: it reports on `tx`, then waits until cancelled.
    pub stall: Option<Sender<()>>,
}

/// The shared-memory all-reduce of one tensor-parallel group (one rank per thread).
#[derive(Debug)]
pub struct AllReduceGroup {
    size: usize,
    state: Mutex<GroupState>,
    changed: Condvar,
}

impl AllReduceGroup {
    /// A group of `size` ranks.
    pub fn new(size: usize) -> Arc<Self> {
        Arc::new(Self {
            size,
            state: Mutex::new(GroupState {
                phase: Phase::Gathering,
                arrived: 0,
                departed: 0,
                slots: vec![Vec::new(); size],
                sum: Vec::new(),
                round: 0,
                entered: vec![0; size],
                poison: None,
                cancel: None,
                #[cfg(test)]
                fault: None,
            }),
            changed: Condvar::new(),
        })
    }

    /// Ranks in the group.
    pub fn size(&self) -> usize {
        self.size
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // A poisoned mutex means a rank panicked while holding it: the state is
        // still consistent enough to report errors (every path re-checks it).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Prepares the group for the next forward pass: clears a poison and any
    /// half-done reduction, and watches `cancel`. Call only while no rank runs.
    pub fn reset(&self, cancel: Option<CancelToken>) {
        let mut st = self.lock();
        st.phase = Phase::Gathering;
        st.arrived = 0;
        st.departed = 0;
        st.round = 0;
        st.entered.iter_mut().for_each(|n| *n = 0);
        st.poison = None;
        st.cancel = cancel;
    }

    /// Marks the group failed because of `rank`; every waiting rank wakes with an
    /// error. The first poison wins (later ones are consequences).
    pub fn poison(&self, rank: usize, message: impl Into<String>) {
        let mut st = self.lock();
        if st.poison.is_none() {
            st.poison = Some((rank, message.into()));
        }
        drop(st);
        self.changed.notify_all();
    }

    /// The rank that poisoned the group and its message, if any.
    pub fn poisoned(&self) -> Option<(usize, String)> {
        self.lock().poison.clone()
    }

    /// Reductions completed since the last reset.
    pub fn rounds(&self) -> u64 {
        self.lock().round
    }

    #[cfg(test)]
    pub(crate) fn inject(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
    }

    /// Error to return if the group can no longer complete a reduction.
    fn broken(&self, st: &mut GroupState) -> Option<ReduceError> {
        if let Some((rank, message)) = &st.poison {
            if st.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
                return Some(ReduceError::Cancelled);
            }
            return Some(ReduceError::Poisoned {
                rank: *rank,
                message: message.clone(),
            });
        }
        if st.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            st.poison = Some((usize::MAX, "cancelled".to_owned()));
            self.changed.notify_all();
            return Some(ReduceError::Cancelled);
        }
        None
    }

    fn wait<'a>(&self, st: MutexGuard<'a, GroupState>) -> MutexGuard<'a, GroupState> {
        match self.changed.wait_timeout(st, CANCEL_POLL) {
            Ok((st, _)) => st,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Rank `rank`'s part of one reduction: `output` receives the element-wise sum
    /// of every rank's `input` (summed in rank order, the same bits on every rank).
    /// Blocks until all ranks arrived, the group is poisoned, or the run is cancelled.
    pub fn all_reduce(
        &self,
        rank: usize,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<(), ReduceError> {
        if rank >= self.size || output.len() != input.len() {
            let message = format!(
                "all-reduce: rank {rank} of {} with {} inputs and {} outputs",
                self.size,
                input.len(),
                output.len()
            );
            self.poison(rank, message.clone());
            return Err(ReduceError::Poisoned { rank, message });
        }
        let st = self.lock();
        #[cfg(test)]
        let st = self.injected_fault(st, rank)?;
        let mut st = st;
        // Wait for the previous reduction to be copied out by everyone.
        loop {
            if let Some(e) = self.broken(&mut st) {
                return Err(e);
            }
            if st.phase == Phase::Gathering {
                break;
            }
            st = self.wait(st);
        }
        if st.arrived > 0
            && st
                .slots
                .iter()
                .any(|s| !s.is_empty() && s.len() != input.len())
        {
            let message = format!(
                "all-reduce of {} values while another rank reduces a different size (graphs out of step)",
                input.len()
            );
            st.poison = Some((rank, message.clone()));
            drop(st);
            self.changed.notify_all();
            return Err(ReduceError::Poisoned { rank, message });
        }
        st.entered[rank] += 1;
        st.slots[rank].clear();
        st.slots[rank].extend_from_slice(input);
        st.arrived += 1;
        let round = st.round;
        if st.arrived == self.size {
            let GroupState { slots, sum, .. } = &mut *st;
            sum.clear();
            sum.extend_from_slice(&slots[0]);
            for slot in &slots[1..] {
                for (acc, v) in sum.iter_mut().zip(slot) {
                    *acc += *v;
                }
            }
            st.phase = Phase::Scattering;
            st.round += 1;
            self.changed.notify_all();
        } else {
            while st.round == round {
                if let Some(e) = self.broken(&mut st) {
                    return Err(e);
                }
                st = self.wait(st);
            }
        }
        output.copy_from_slice(&st.sum);
        st.departed += 1;
        if st.departed == self.size {
            st.phase = Phase::Gathering;
            st.arrived = 0;
            st.departed = 0;
            st.slots.iter_mut().for_each(Vec::clear);
            self.changed.notify_all();
        }
        Ok(())
    }

    #[cfg(test)]
    fn injected_fault<'a>(
        &'a self,
        mut st: MutexGuard<'a, GroupState>,
        rank: usize,
    ) -> Result<MutexGuard<'a, GroupState>, ReduceError> {
        let Some(fault) = st.fault.clone() else {
            return Ok(st);
        };
        if fault.rank != rank || st.entered[rank] != fault.at {
            return Ok(st);
        }
        match fault.stall {
            None => {
                let message = format!("injected fault at reduction {}", fault.at);
                st.poison.get_or_insert((rank, message.clone()));
                drop(st);
                self.changed.notify_all();
                Err(ReduceError::Poisoned { rank, message })
            }
            Some(tx) => {
                let _ = tx.try_send(());
                loop {
                    if let Some(e) = self.broken(&mut st) {
                        return Err(e);
                    }
                    st = self.wait(st);
                }
            }
        }
    }
}

/// `ai.lumine.AllReduceSum` for one rank: a CPU custom operator of ONNX Runtime.
#[derive(Debug)]
pub struct AllReduceSum {
    rank: usize,
    group: Arc<AllReduceGroup>,
}

impl AllReduceSum {
    /// The operator of rank `rank` in `group`.
    pub fn new(rank: usize, group: Arc<AllReduceGroup>) -> Self {
        Self { rank, group }
    }

    /// An operator domain holding this operator, for a session builder.
    pub fn domain(self) -> Result<OperatorDomain, ort::Error> {
        OperatorDomain::new(DOMAIN)?.add(self)
    }
}

/// The kernel of one `AllReduceSum` node.
#[derive(Debug)]
pub struct AllReduceKernel {
    rank: usize,
    group: Arc<AllReduceGroup>,
}

impl Operator for AllReduceSum {
    type Kernel<'attr> = AllReduceKernel;

    fn name(&self) -> &str {
        ALL_REDUCE_OP
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        [OperatorInput::required(TensorElementType::Float32)]
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(TensorElementType::Float32)]
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<Self::Kernel<'attr>> {
        Ok(AllReduceKernel {
            rank: self.rank,
            group: Arc::clone(&self.group),
        })
    }
}

impl Kernel for AllReduceKernel {
    fn compute(&mut self, ctx: &ComputeContext) -> ort::Result<()> {
        let input = ctx
            .input(0)?
            .ok_or_else(|| ort::Error::new("AllReduceSum: missing input"))?;
        let (shape, data) = input.try_extract_tensor::<f32>()?;
        let mut output = ctx
            .output(0, shape.to_vec())?
            .ok_or_else(|| ort::Error::new("AllReduceSum: missing output"))?;
        let (_, out) = output.try_extract_tensor_mut::<f32>()?;
        self.group
            .all_reduce(self.rank, data, out)
            .map_err(|e| ort::Error::new(e.to_string()))
    }
}

/// Serialises the creation of sessions that register the operator domain: ONNX
/// Runtime adds a custom domain to a process-wide table (ONNX's DomainToVersionRange)
/// with a check-then-insert that is not atomic, so the first ranks of a process
/// opening their graphs at the same moment sometimes failed ("Trying to add a domain
/// to DomainToVersion map, but the domain is already exist"; seen in 2 of 6 fresh
/// `lumine bench tokens` processes on the partitioned test models).
static REGISTER_DOMAIN: Mutex<()> = Mutex::new(());

/// Opens rank `rank`'s decoder graph with the reduction operator registered.
pub fn open_rank_session(
    runtime: &OrtRuntime,
    path: &Path,
    rank: usize,
    group: Arc<AllReduceGroup>,
    options: &ProviderOptions,
    intra_threads: usize,
) -> Result<Session, EngineError> {
    let graph = graph_name(path);
    if !path.is_file() {
        return Err(EngineError::File {
            path: path.to_owned(),
            message: "rank graph file is missing".to_owned(),
        });
    }
    let err = |e: ort::Error| EngineError::onnx(&graph, e);
    let mut options = options.clone();
    options.device_id = options.device_id.saturating_add(rank as u32);
    let providers = provider::dispatch(&options)?;
    let domain = AllReduceSum::new(rank, group).domain().map_err(err)?;
    let _serial = REGISTER_DOMAIN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Session::builder(&runtime.environment)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(|e| EngineError::onnx(&graph, e))?
        // Each rank computes with its own threads (cores / N: the ranks run at the
        // same time), not the environment's global pool that every other session
        // shares. Ranks block in reductions while their peers compute: spinning
        // pool threads would take the cores those peers need.
        .with_independent_thread_pool()
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_intra_threads(intra_threads)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_intra_op_spinning(false)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_operators(domain)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_execution_providers(providers)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .commit_from_file(path)
        .map_err(|e| EngineError::onnx(&graph, e))
}

fn graph_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One forward pass for one rank.
struct Job {
    embeds: Arc<Vec<f32>>,
    positions: Arc<Vec<i64>>,
    seq: usize,
    hidden: usize,
    total: usize,
    past: Vec<(DynValue, DynValue)>,
    run: Arc<RunOptions>,
}

/// Keys and values of every layer, as a rank's session takes and returns them.
type LayerKv = Vec<(DynValue, DynValue)>;

/// What a rank hands back: its past (always, so the cache survives an error) and
/// its outputs (logits on rank 0, the new keys and values) or error.
struct Done {
    past: LayerKv,
    outcome: Result<(Option<Vec<f32>>, LayerKv), EngineError>,
}

struct Rank {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// Poisons the group if the rank thread unwinds in the middle of a run.
struct PanicGuard<'a> {
    group: &'a AllReduceGroup,
    rank: usize,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.group.poison(self.rank, "the rank thread panicked");
        }
    }
}

/// N decoder ranks in lock-step, one thread and one session each.
pub struct RankExecutor {
    ranks: Vec<Rank>,
    group: Arc<AllReduceGroup>,
    graphs: Vec<String>,
    layers: usize,
}

impl std::fmt::Debug for RankExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RankExecutor")
            .field("graphs", &self.graphs)
            .finish_non_exhaustive()
    }
}

impl RankExecutor {
    /// Starts one thread per rank graph of `manifest` (named `lumine-rank-R`), each
    /// opening its session; fails (and stops the threads already started) if any
    /// rank cannot open its graph.
    pub fn start(
        runtime: &OrtRuntime,
        dir: &Path,
        manifest: &Manifest,
        options: &ProviderOptions,
    ) -> Result<Self, EngineError> {
        let graphs = manifest.rank_graphs();
        let n = graphs.len();
        let group = AllReduceGroup::new(n);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let intra = (cores / n).max(1);
        let layers = manifest.text.num_layers;
        let mut ranks = Vec::with_capacity(n);
        let mut ready = Vec::with_capacity(n);
        for (rank, file) in graphs.iter().enumerate() {
            let (job_tx, job_rx) = bounded::<Job>(1);
            let (done_tx, done_rx) = bounded::<Done>(1);
            let (ready_tx, ready_rx) = bounded::<Result<(), EngineError>>(1);
            let path = dir.join(file);
            let (group, runtime, options) = (Arc::clone(&group), runtime.clone(), options.clone());
            let file = file.clone();
            let thread = std::thread::Builder::new()
                .name(format!("lumine-rank-{rank}"))
                .spawn(move || {
                    let session = open_rank_session(
                        &runtime,
                        &path,
                        rank,
                        Arc::clone(&group),
                        &options,
                        intra,
                    );
                    let mut session = match session {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    rank_loop(&mut session, rank, &file, layers, &group, &job_rx, &done_tx);
                })
                .map_err(|e| EngineError::Input(format!("cannot start rank thread {rank}: {e}")))?;
            ranks.push(Rank {
                jobs: Some(job_tx),
                done: done_rx,
                thread: Some(thread),
            });
            ready.push(ready_rx);
        }
        let executor = Self {
            ranks,
            group,
            graphs,
            layers,
        };
        for (rank, rx) in ready.iter().enumerate() {
            match rx.recv() {
                Ok(Ok(())) => {}
                // Dropping the executor closes the other ranks' channels and joins them.
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(EngineError::Input(format!(
                        "rank {rank} thread stopped while opening its graph"
                    )));
                }
            }
        }
        Ok(executor)
    }

    /// Number of ranks.
    pub fn partitions(&self) -> usize {
        self.ranks.len()
    }

    /// The shared reduction group (for diagnostics and tests).
    pub fn group(&self) -> &Arc<AllReduceGroup> {
        &self.group
    }

    /// Runs every rank on the same inputs; returns rank 0's logits `[seq * vocab]`
    /// and replaces `cache` by the ranks' presents. On any error the cache is left
    /// as it was and every rank has finished its run.
    pub fn forward(
        &mut self,
        embeds: Vec<f32>,
        position_ids: Vec<i64>,
        hidden: usize,
        cache: &mut KvCache,
        cancel: &CancelToken,
    ) -> Result<Vec<f32>, EngineError> {
        let seq = position_ids.len() / 3;
        let total = cache.len() + seq;
        let n = self.ranks.len();
        let mut past = cache.take_layers();
        if past.len() != n * self.layers {
            let got = past.len();
            cache.restore_layers(past);
            return Err(EngineError::Input(format!(
                "a partitioned model needs a cache of {} ({} ranks x {} layers) key/value pairs, got {got}: use Model::new_cache",
                n * self.layers,
                n,
                self.layers
            )));
        }
        self.group.reset(Some(cancel.clone()));
        let runs = cancel.run_options_for(n)?;
        let embeds = Arc::new(embeds);
        let positions = Arc::new(position_ids);
        // Split the cache per rank (rank-major) and hand each rank its part.
        let mut parts: Vec<Vec<(DynValue, DynValue)>> = Vec::with_capacity(n);
        for _ in 0..n {
            let rest = past.split_off(self.layers);
            parts.push(std::mem::replace(&mut past, rest));
        }
        let mut sent = vec![false; n];
        let mut returned: Vec<Option<Vec<(DynValue, DynValue)>>> = (0..n).map(|_| None).collect();
        for (rank, (part, run)) in parts.into_iter().zip(runs).enumerate() {
            let job = Job {
                embeds: Arc::clone(&embeds),
                positions: Arc::clone(&positions),
                seq,
                hidden,
                total,
                past: part,
                run,
            };
            let sender = self.ranks[rank].jobs.as_ref();
            match sender.map(|s| s.send(job)) {
                Some(Ok(())) => sent[rank] = true,
                Some(Err(e)) => {
                    returned[rank] = Some(e.into_inner().past);
                    self.group.poison(rank, "the rank thread is gone");
                }
                None => self.group.poison(rank, "the executor is shut down"),
            }
        }
        let mut logits = None;
        let mut presents: Vec<Vec<(DynValue, DynValue)>> = (0..n).map(|_| Vec::new()).collect();
        let mut first_error: Option<EngineError> = None;
        for rank in 0..n {
            if !sent[rank] {
                continue;
            }
            match self.ranks[rank].done.recv() {
                Ok(done) => {
                    returned[rank] = Some(done.past);
                    match done.outcome {
                        Ok((rank_logits, present)) => {
                            if rank == 0 {
                                logits = rank_logits;
                            }
                            presents[rank] = present;
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                Err(_) => {
                    // The thread died (its panic guard poisoned the group).
                    self.group.poison(rank, "the rank thread panicked");
                    self.ranks[rank].jobs = None;
                }
            }
        }
        // Put the past back; every rank returned its part unless its thread died.
        let mut restored = Vec::with_capacity(n * self.layers);
        let mut complete = true;
        for part in returned {
            match part {
                Some(p) => restored.extend(p),
                None => complete = false,
            }
        }
        if complete {
            cache.restore_layers(restored);
        } else {
            // A dead rank took its part of the cache with it.
            cache.restore_layers(Vec::new());
        }
        let failure = self.group.poisoned();
        if cancel.is_cancelled() && (failure.is_some() || first_error.is_some()) {
            return Err(EngineError::Cancelled);
        }
        if let Some((rank, message)) = failure {
            let graph = self
                .graphs
                .get(rank)
                .cloned()
                .unwrap_or_else(|| "decoder ranks".to_owned());
            return Err(EngineError::Onnx {
                graph,
                message: format!("rank {rank} of {n} failed, every rank stopped: {message}"),
            });
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if !complete {
            return Err(EngineError::Input("a rank thread is gone".to_owned()));
        }
        let logits =
            logits.ok_or_else(|| EngineError::Input("rank 0 returned no logits".to_owned()))?;
        cache.replace(presents.into_iter().flatten().collect(), total)?;
        Ok(logits)
    }
}

impl Drop for RankExecutor {
    fn drop(&mut self) {
        for rank in &mut self.ranks {
            rank.jobs = None;
        }
        for rank in &mut self.ranks {
            if let Some(thread) = rank.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

fn rank_loop(
    session: &mut Session,
    rank: usize,
    graph: &str,
    layers: usize,
    group: &AllReduceGroup,
    jobs: &Receiver<Job>,
    done: &Sender<Done>,
) {
    let past_names: Vec<(String, String)> = (0..layers)
        .map(|i| {
            (
                format!("past_key_values.{i}.key"),
                format!("past_key_values.{i}.value"),
            )
        })
        .collect();
    let present_names: Vec<(String, String)> = (0..layers)
        .map(|i| (format!("present.{i}.key"), format!("present.{i}.value")))
        .collect();
    for job in jobs {
        let guard = PanicGuard { group, rank };
        let outcome = run_rank(session, rank, graph, &past_names, &present_names, &job);
        if let Err(e) = &outcome {
            group.poison(rank, e.to_string());
        }
        drop(guard);
        let Job { past, .. } = job;
        if done.send(Done { past, outcome }).is_err() {
            return;
        }
    }
}

type RankOutputs = (Option<Vec<f32>>, Vec<(DynValue, DynValue)>);

fn run_rank(
    session: &mut Session,
    rank: usize,
    graph: &str,
    past_names: &[(String, String)],
    present_names: &[(String, String)],
    job: &Job,
) -> Result<RankOutputs, EngineError> {
    let err = |e: ort::Error| EngineError::onnx(graph, e);
    let (seq, hidden, total) = (job.seq, job.hidden, job.total);
    let mut inputs: Vec<(std::borrow::Cow<'_, str>, SessionInputValue<'_>)> = vec![
        (
            "inputs_embeds".into(),
            Tensor::from_array(([1, seq, hidden], job.embeds.to_vec()))
                .map_err(err)?
                .into(),
        ),
        (
            "attention_mask".into(),
            Tensor::from_array(([1, total], vec![1i64; total]))
                .map_err(err)?
                .into(),
        ),
        (
            "position_ids".into(),
            Tensor::from_array(([3, 1, seq], job.positions.to_vec()))
                .map_err(err)?
                .into(),
        ),
    ];
    for ((key_name, value_name), (key, value)) in past_names.iter().zip(&job.past) {
        inputs.push((key_name.as_str().into(), SessionInputValue::from(key)));
        inputs.push((value_name.as_str().into(), SessionInputValue::from(value)));
    }
    let mut outputs = session.run_with_options(inputs, &job.run).map_err(err)?;
    let logits = if rank == 0 {
        let (_, data) = outputs["logits"].try_extract_tensor::<f32>().map_err(err)?;
        Some(data.to_vec())
    } else {
        None
    };
    let mut present = Vec::with_capacity(present_names.len());
    for (key_name, value_name) in present_names {
        let missing = || EngineError::Input(format!("{graph}: output {key_name} missing"));
        let key = outputs.remove(key_name.as_str()).ok_or_else(missing)?;
        let value = outputs.remove(value_name.as_str()).ok_or_else(missing)?;
        present.push((key, value));
    }
    Ok((logits, present))
}

/// Checks the rank graphs of a partitioned model for `lumine model check`: each
/// opens with the reduction operator registered and has the decoder's ports
/// (rank 0 `logits`, the others `hidden_states`) with its share of the KV heads.
pub fn check_rank_graphs(dir: &Path, manifest: &Manifest, runtime: &OrtRuntime) -> Vec<String> {
    let mut problems = Vec::new();
    let graphs = manifest.rank_graphs();
    let n = graphs.len();
    let kv = manifest.text.num_key_value_heads / n.max(1);
    for (rank, file) in graphs.iter().enumerate() {
        let path = dir.join(file);
        if !path.is_file() {
            problems.push(format!("{file}: rank {rank} graph file is missing"));
            continue;
        }
        let session = match open_rank_session(
            runtime,
            &path,
            rank,
            AllReduceGroup::new(n),
            &ProviderOptions::default(),
            1,
        ) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!(
                    "{file}: ONNX Runtime cannot load rank {rank} ({e}); re-export the model"
                ));
                continue;
            }
        };
        let first = if rank == 0 { "logits" } else { "hidden_states" };
        let mut want_in = vec![
            "inputs_embeds".to_owned(),
            "attention_mask".to_owned(),
            "position_ids".to_owned(),
        ];
        let mut want_out = vec![first.to_owned()];
        for i in 0..manifest.text.num_layers {
            for part in ["key", "value"] {
                want_in.push(format!("past_key_values.{i}.{part}"));
                want_out.push(format!("present.{i}.{part}"));
            }
        }
        for (kind, outlets, wanted) in [
            ("input", session.inputs(), &want_in),
            ("output", session.outputs(), &want_out),
        ] {
            for name in wanted {
                if !outlets.iter().any(|o| o.name() == name) {
                    problems.push(format!("{file}: {kind} {name:?} is missing"));
                }
            }
        }
        if let Some(outlet) = session
            .inputs()
            .iter()
            .find(|o| o.name() == "past_key_values.0.key")
            && let ort::value::ValueType::Tensor { shape, .. } = outlet.dtype()
            && let Some(&heads) = shape.get(1)
            && heads >= 0
            && heads as usize != kv
        {
            problems.push(format!(
                "{file}: past_key_values hold {heads} KV heads, expected {kv} (num_key_value_heads / partitions)"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_group(
        group: &Arc<AllReduceGroup>,
        inputs: Vec<Vec<f32>>,
    ) -> Vec<Result<Vec<f32>, ReduceError>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .into_iter()
                .enumerate()
                .map(|(rank, input)| {
                    let group = Arc::clone(group);
                    std::thread::Builder::new()
                        .name(format!("test-rank-{rank}"))
                        .spawn_scoped(s, move || {
                            let mut out = vec![0.0; input.len()];
                            // Three reductions in a row, each feeding the next.
                            let mut x = input;
                            for _ in 0..3 {
                                group.all_reduce(rank, &x, &mut out)?;
                                x.clone_from(&out);
                            }
                            Ok(out)
                        })
                        .unwrap()
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// The committed 2-rank test model's executor and a matching empty cache.
    fn tp2() -> (RankExecutor, Manifest) {
        let runtime = crate::ort_library::load(None).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/test-tiny-tp2");
        let manifest = Manifest::load(&dir).unwrap();
        let executor =
            RankExecutor::start(runtime, &dir, &manifest, &ProviderOptions::default()).unwrap();
        (executor, manifest)
    }

    fn empty_cache(m: &Manifest) -> KvCache {
        let n = m.partitions;
        KvCache::empty(
            m.text.num_layers * n,
            m.text.num_key_value_heads / n,
            m.text.head_dim,
        )
        .unwrap()
    }

    /// A 5-token prompt: embeddings and text positions.
    fn prompt(m: &Manifest) -> (Vec<f32>, Vec<i64>) {
        let d = m.text.hidden_size;
        let embeds = (0..5 * d)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let positions = (0..3).flat_map(|_| 0..5).collect();
        (embeds, positions)
    }

    #[test]
    fn a_rank_failing_mid_graph_stops_every_rank_and_keeps_the_cache() {
        let (mut ex, m) = tp2();
        let d = m.text.hidden_size;
        let cancel = CancelToken::default();
        let mut cache = empty_cache(&m);
        let (embeds, positions) = prompt(&m);
        let reference = ex
            .forward(embeds.clone(), positions.clone(), d, &mut cache, &cancel)
            .unwrap();
        assert_eq!(cache.len(), 5);
        // Rank 1 fails in its 4th reduction (layer 1's MLP): rank 0 is then waiting in
        // that reduction and must be released.
        ex.group().inject(Some(Fault {
            rank: 1,
            at: 3,
            stall: None,
        }));
        let (e1, p1) = (embeds[..d].to_vec(), vec![5, 5, 5]);
        let err = ex
            .forward(e1.clone(), p1.clone(), d, &mut cache, &cancel)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("rank 1 of 2 failed"), "{text}");
        assert!(text.contains("injected fault"), "{text}");
        assert_eq!(cache.len(), 5, "the cache is as before the failed pass");
        // The executor still works: the same step gives the same logits as on a
        // fresh executor.
        ex.group().inject(None);
        let again = ex
            .forward(e1.clone(), p1.clone(), d, &mut cache, &cancel)
            .unwrap();
        let (mut fresh, _) = tp2();
        let mut fresh_cache = empty_cache(&m);
        let r2 = fresh
            .forward(embeds, positions, d, &mut fresh_cache, &cancel)
            .unwrap();
        assert_eq!(r2, reference);
        let expected = fresh.forward(e1, p1, d, &mut fresh_cache, &cancel).unwrap();
        assert_eq!(again, expected);
        assert_eq!(cache.len(), 6);
    }

    #[test]
    fn cancelling_a_pass_blocked_in_a_reduction_returns_cancelled() {
        let (mut ex, m) = tp2();
        let d = m.text.hidden_size;
        let cancel = CancelToken::default();
        let mut cache = empty_cache(&m);
        let (embeds, positions) = prompt(&m);
        let (tx, rx) = bounded(1);
        ex.group().inject(Some(Fault {
            rank: 0,
            at: 2,
            stall: Some(tx),
        }));
        let result = std::thread::scope(|s| {
            let canceller = std::thread::Builder::new()
                .name("canceller".to_owned())
                .spawn_scoped(s, || {
                    rx.recv().unwrap();
                    cancel.cancel();
                })
                .unwrap();
            let r = ex.forward(embeds.clone(), positions.clone(), d, &mut cache, &cancel);
            canceller.join().unwrap();
            r
        });
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert_eq!(cache.len(), 0);
        ex.group().inject(None);
        cancel.reset();
        ex.forward(embeds, positions, d, &mut cache, &cancel)
            .unwrap();
        assert_eq!(cache.len(), 5);
        // Shutdown joins the rank threads.
        drop(ex);
    }

    #[test]
    fn reduction_sums_in_rank_order_on_every_rank() {
        for n in [1, 2, 3, 4] {
            let group = AllReduceGroup::new(n);
            let inputs: Vec<Vec<f32>> = (0..n)
                .map(|r| (0..5).map(|i| (r * 10 + i) as f32 * 0.1).collect())
                .collect();
            let mut expected: Vec<f32> = inputs[0].clone();
            for input in &inputs[1..] {
                for (e, v) in expected.iter_mut().zip(input) {
                    *e += *v;
                }
            }
            // Round 2 and 3 sum n copies of the previous result.
            for _ in 0..2 {
                let mut next = expected.clone();
                for _ in 1..n {
                    for (e, v) in next.iter_mut().zip(&expected) {
                        *e += *v;
                    }
                }
                expected = next;
            }
            let results = run_group(&group, inputs);
            for r in results {
                assert_eq!(r.unwrap(), expected, "n = {n}");
            }
            assert_eq!(group.rounds(), 3);
        }
    }

    #[test]
    fn a_poisoned_group_releases_waiting_ranks() {
        let group = AllReduceGroup::new(3);
        group.inject(Some(Fault {
            rank: 2,
            at: 1,
            stall: None,
        }));
        let results = run_group(&group, vec![vec![1.0; 4]; 3]);
        for r in &results {
            assert!(
                matches!(r, Err(ReduceError::Poisoned { rank: 2, .. })),
                "{r:?}"
            );
        }
        // The next pass starts clean.
        group.inject(None);
        group.reset(None);
        let results = run_group(&group, vec![vec![1.0; 4]; 3]);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap() == &vec![27.0; 4])
        );
    }

    #[test]
    fn cancellation_releases_ranks_waiting_in_a_reduction() {
        let group = AllReduceGroup::new(2);
        let cancel = CancelToken::default();
        group.reset(Some(cancel.clone()));
        let (tx, rx) = bounded(1);
        group.inject(Some(Fault {
            rank: 1,
            at: 0,
            stall: Some(tx),
        }));
        let results = std::thread::scope(|s| {
            let waiter = std::thread::Builder::new()
                .name("canceller".to_owned())
                .spawn_scoped(s, || {
                    rx.recv().unwrap();
                    cancel.cancel();
                })
                .unwrap();
            let r = run_group(&group, vec![vec![1.0; 2]; 2]);
            waiter.join().unwrap();
            r
        });
        for r in results {
            assert_eq!(r, Err(ReduceError::Cancelled));
        }
    }
}
