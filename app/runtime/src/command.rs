//! What the console (or the CLI) asks of a running agent.

/// Capacity of the command channel: commands are rare, a small bound is plenty.
pub const COMMAND_CAPACITY: usize = 64;

/// A request to the runtime, sent over a bounded channel
/// ([`crate::Runtime::commands`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start, or resume after a pause.
    Start,
    /// Pause: release everything and stop acting until [`Command::Start`].
    Pause,
    /// Stop for good: release everything and end the threads.
    Stop,
    /// Replace the operator's instruction (`None` clears it).
    SetInstruction(Option<String>),
    /// The operator takes the controls: the agent releases and yields.
    TakeControl,
    /// The operator hands the controls back: the agent resumes.
    HandBack,
    /// Play this action text as the next step (parsed with the model's
    /// parser, under the same safety rules); a malformed text is reported
    /// and never played.
    InjectAction(String),
    /// Stop at once, from wherever: the same as the emergency hotkey.
    EmergencyStop,
}
