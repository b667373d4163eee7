//! [`Context`]: the FIFO of (frame, answer) pairs and its rendering as chat
//! messages.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::budget::{
    FRAME_OVERHEAD_TOKENS, MESSAGE_OVERHEAD_TOKENS, TokenCounter, estimate_text_tokens,
};

/// How the window is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextConfig {
    /// The system prompt (the manifest's prompt for the mode, or the
    /// operator's override).
    pub system_prompt: String,
    /// Most frames in the window, the newest included (at least 1).
    pub history_frames: usize,
    /// Upper bound on the prompt's tokens, if any: older pairs are evicted
    /// to stay under it (the newest frame always stays).
    pub token_budget: Option<usize>,
    /// Tokens of one frame ([`crate::frame_tokens`] of the model's frame
    /// size), without the two vision markers.
    pub frame_tokens: usize,
}

/// One step in the window: the frame the model saw and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEntry<F> {
    /// The runtime's step index.
    pub step: u64,
    /// The frame.
    pub frame: F,
    /// Text placed after the frame (an operator's remark that step), if any.
    pub note: Option<String>,
    /// The thought of this step's answer, if it thought.
    pub thought: Option<String>,
    /// The answer as the model writes it
    /// (`[<|thought_start|>T<|thought_end|>]<|action_start|>A<|action_end|>`);
    /// `None` while the step waits for its answer.
    pub answer: Option<String>,
    /// Tokens this step costs (frame, note, answer, template).
    tokens: usize,
}

impl<F> StepEntry<F> {
    /// Tokens this step costs in the prompt (frame, note, answer, template).
    #[must_use]
    pub fn tokens(&self) -> usize {
        self.tokens
    }
}

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The system prompt.
    System,
    /// Frames, the goal, notes.
    User,
    /// The agent's answers.
    Assistant,
}

impl Role {
    /// The chat template's name for the role.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<F> {
    /// Text.
    Text(String),
    /// A frame.
    Frame(F),
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage<F> {
    /// Who says it.
    pub role: Role,
    /// What is said, in order.
    pub parts: Vec<Part<F>>,
}

/// What a change to the window did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextChange {
    /// Steps evicted by this change, oldest first.
    pub evicted: Vec<u64>,
    /// True when a new thought flushed the window.
    pub flushed: bool,
    /// Frames in the window after the change.
    pub frames: usize,
    /// Estimated prompt tokens after the change.
    pub tokens: usize,
    /// True when the prompt is still over the token budget (only the newest
    /// frame is left and it does not fit).
    pub over_budget: bool,
}

/// A misuse of the window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// An answer for a step that is not the one waiting for an answer.
    #[error("no frame of step {step} is waiting for an answer")]
    NoPendingStep {
        /// The step the answer was for.
        step: u64,
    },
}

/// The rolling context window. `F` is the frame handle (cheap to clone).
pub struct Context<F> {
    config: ContextConfig,
    counter: TokenCounter,
    instruction: Option<String>,
    thought: Option<String>,
    steps: VecDeque<StepEntry<F>>,
    /// Tokens of the system message and the goal text.
    fixed_tokens: usize,
}

impl<F> std::fmt::Debug for Context<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("instruction", &self.instruction)
            .field("thought", &self.thought)
            .field(
                "steps",
                &self.steps.iter().map(|s| s.step).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<F: Clone> Context<F> {
    /// An empty window counting text with [`estimate_text_tokens`].
    #[must_use]
    pub fn new(config: ContextConfig) -> Self {
        Self::with_counter(config, Arc::new(estimate_text_tokens))
    }

    /// An empty window counting text with `counter` (e.g. the tokenizer).
    #[must_use]
    pub fn with_counter(mut config: ContextConfig, counter: TokenCounter) -> Self {
        config.history_frames = config.history_frames.max(1);
        let mut context = Self {
            config,
            counter,
            instruction: None,
            thought: None,
            steps: VecDeque::new(),
            fixed_tokens: 0,
        };
        context.refresh_fixed_tokens();
        context
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ContextConfig {
        &self.config
    }

    /// The operator's instruction, if any.
    #[must_use]
    pub fn instruction(&self) -> Option<&str> {
        self.instruction.as_deref()
    }

    /// The latest thought, if any since the last [`Context::clear`].
    #[must_use]
    pub fn latest_thought(&self) -> Option<&str> {
        self.thought.as_deref()
    }

    /// The goal text placed before the oldest frame: the latest thought,
    /// else the instruction.
    #[must_use]
    pub fn goal(&self) -> Option<&str> {
        self.thought.as_deref().or(self.instruction.as_deref())
    }

    /// The steps in the window, oldest first.
    pub fn steps(&self) -> impl ExactSizeIterator<Item = &StepEntry<F>> {
        self.steps.iter()
    }

    /// Frames in the window.
    #[must_use]
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when no frame is in the window.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Estimated prompt tokens.
    #[must_use]
    pub fn tokens(&self) -> usize {
        self.fixed_tokens + self.steps.iter().map(|s| s.tokens).sum::<usize>()
    }

    /// Tokens of the system prompt and the goal text (the part of the prompt
    /// that is not a step).
    #[must_use]
    pub fn fixed_tokens(&self) -> usize {
        self.fixed_tokens
    }

    /// Replaces the operator's instruction (the goal text while no thought
    /// has been produced).
    pub fn set_instruction(&mut self, instruction: Option<String>) -> ContextChange {
        self.instruction = instruction.filter(|i| !i.is_empty());
        self.refresh_fixed_tokens();
        self.enforce(Vec::new(), false)
    }

    /// Replaces the system prompt (mode switch, operator override).
    pub fn set_system_prompt(&mut self, prompt: String) -> ContextChange {
        self.config.system_prompt = prompt;
        self.refresh_fixed_tokens();
        self.enforce(Vec::new(), false)
    }

    /// Adds the newest frame, which now waits for its answer. A previous
    /// frame still waiting (its turn was rejected) is dropped first and
    /// reported as evicted, so the messages keep alternating.
    pub fn push_frame(&mut self, step: u64, frame: F, note: Option<String>) -> ContextChange {
        let mut evicted = Vec::new();
        if self.steps.back().is_some_and(|s| s.answer.is_none())
            && let Some(stale) = self.steps.pop_back()
        {
            evicted.push(stale.step);
        }
        let note = note.filter(|n| !n.is_empty());
        let mut entry = StepEntry {
            step,
            frame,
            note,
            thought: None,
            answer: None,
            tokens: 0,
        };
        entry.tokens = self.step_tokens(&entry);
        self.steps.push_back(entry);
        self.enforce(evicted, false)
    }

    /// Records the answer to the newest frame. A thought becomes the goal
    /// and flushes every older step from the window.
    ///
    /// # Errors
    /// The newest frame is not `step`'s, or already has its answer.
    pub fn record_answer(
        &mut self,
        step: u64,
        thought: Option<String>,
        answer: String,
    ) -> Result<ContextChange, ContextError> {
        let pending = self
            .steps
            .back()
            .is_some_and(|s| s.step == step && s.answer.is_none());
        if !pending {
            return Err(ContextError::NoPendingStep { step });
        }
        let mut evicted = Vec::new();
        let flushed = thought.is_some();
        if let Some(text) = &thought {
            while self.steps.len() > 1 {
                if let Some(old) = self.steps.pop_front() {
                    evicted.push(old.step);
                }
            }
            self.thought = Some(text.clone());
            self.refresh_fixed_tokens();
        }
        let tokens = {
            let Some(entry) = self.steps.back_mut() else {
                return Err(ContextError::NoPendingStep { step });
            };
            entry.thought = thought;
            entry.answer = Some(answer);
            entry.clone()
        };
        let cost = self.step_tokens(&tokens);
        if let Some(entry) = self.steps.back_mut() {
            entry.tokens = cost;
        }
        Ok(self.enforce(evicted, flushed))
    }

    /// Drops the newest frame if it still waits for an answer (its turn was
    /// rejected); returns its step.
    pub fn discard_pending(&mut self) -> Option<u64> {
        if self.steps.back().is_some_and(|s| s.answer.is_none()) {
            self.steps.pop_back().map(|s| s.step)
        } else {
            None
        }
    }

    /// Empties the window and forgets the thought (a new episode); the
    /// instruction stays.
    pub fn clear(&mut self) -> ContextChange {
        let evicted = self.steps.drain(..).map(|s| s.step).collect();
        self.thought = None;
        self.refresh_fixed_tokens();
        self.enforce(evicted, true)
    }

    /// The chat messages for the model, system prompt first, newest frame
    /// last.
    #[must_use]
    pub fn messages(&self) -> Vec<ChatMessage<F>> {
        let mut out = Vec::with_capacity(2 + 2 * self.steps.len());
        out.push(ChatMessage {
            role: Role::System,
            parts: vec![Part::Text(self.config.system_prompt.clone())],
        });
        for (i, step) in self.steps.iter().enumerate() {
            let mut parts = Vec::with_capacity(3);
            if i == 0
                && let Some(goal) = self.goal()
            {
                parts.push(Part::Text(goal.to_owned()));
            }
            parts.push(Part::Frame(step.frame.clone()));
            if let Some(note) = &step.note {
                parts.push(Part::Text(note.clone()));
            }
            out.push(ChatMessage {
                role: Role::User,
                parts,
            });
            if let Some(answer) = &step.answer {
                out.push(ChatMessage {
                    role: Role::Assistant,
                    parts: vec![Part::Text(answer.clone())],
                });
            }
        }
        out
    }

    fn refresh_fixed_tokens(&mut self) {
        let goal = self.goal().map_or(0, |g| (self.counter)(g));
        self.fixed_tokens =
            MESSAGE_OVERHEAD_TOKENS + (self.counter)(&self.config.system_prompt) + goal;
    }

    fn step_tokens(&self, entry: &StepEntry<F>) -> usize {
        let mut tokens = MESSAGE_OVERHEAD_TOKENS + FRAME_OVERHEAD_TOKENS + self.config.frame_tokens;
        if let Some(note) = &entry.note {
            tokens += (self.counter)(note);
        }
        if let Some(answer) = &entry.answer {
            tokens += MESSAGE_OVERHEAD_TOKENS + (self.counter)(answer);
        }
        tokens
    }

    /// Evicts the oldest steps beyond the frame limit and the token budget.
    fn enforce(&mut self, mut evicted: Vec<u64>, flushed: bool) -> ContextChange {
        let over_budget = |c: &Self| c.config.token_budget.is_some_and(|b| c.tokens() > b);
        while self.steps.len() > self.config.history_frames
            || (self.steps.len() > 1 && over_budget(self))
        {
            match self.steps.pop_front() {
                Some(old) => evicted.push(old.step),
                None => break,
            }
        }
        ContextChange {
            evicted,
            flushed,
            frames: self.steps.len(),
            tokens: self.tokens(),
            over_budget: over_budget(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: usize) -> ContextConfig {
        ContextConfig {
            system_prompt: "SYS".to_owned(),
            history_frames: n,
            token_budget: None,
            frame_tokens: 100,
        }
    }

    fn act(text: &str) -> String {
        format!("<|action_start|>{text}<|action_end|>")
    }

    fn frames(ctx: &Context<&'static str>) -> Vec<u64> {
        ctx.steps().map(|s| s.step).collect()
    }

    #[test]
    fn fifo_evicts_oldest_and_reports_it() {
        let mut ctx = Context::new(config(3));
        for step in 0..3 {
            assert!(ctx.push_frame(step, "f", None).evicted.is_empty());
            ctx.record_answer(step, None, act("0 0 0 ; ; ; ; ; ;"))
                .unwrap();
        }
        let change = ctx.push_frame(3, "f", None);
        assert_eq!(change.evicted, [0]);
        assert_eq!(change.frames, 3);
        assert_eq!(frames(&ctx), [1, 2, 3]);
    }

    #[test]
    fn thought_flushes_and_becomes_goal() {
        let mut ctx = Context::new(config(10));
        ctx.set_instruction(Some("go north".to_owned()));
        for step in 0..4 {
            ctx.push_frame(step, "f", None);
            ctx.record_answer(step, None, act("0 0 0 ; ; ; ; ; ;"))
                .unwrap();
        }
        assert_eq!(ctx.goal(), Some("go north"));
        ctx.push_frame(4, "f", None);
        let change = ctx
            .record_answer(
                4,
                Some("open the chest".to_owned()),
                act("0 0 0 ; F ; ; ; ; ;"),
            )
            .unwrap();
        assert!(change.flushed);
        assert_eq!(change.evicted, [0, 1, 2, 3]);
        assert_eq!(frames(&ctx), [4]);
        assert_eq!(ctx.goal(), Some("open the chest"));
        let messages = ctx.messages();
        assert_eq!(
            messages[1].parts[0],
            Part::Text("open the chest".to_owned())
        );
    }

    #[test]
    fn rejected_turn_leaves_no_gap_in_alternation() {
        let mut ctx = Context::new(config(10));
        ctx.push_frame(0, "a", None);
        ctx.record_answer(0, None, act("0 0 0 ; ; ; ; ; ;"))
            .unwrap();
        ctx.push_frame(1, "b", None);
        // Step 1's turn failed to parse: the next frame replaces it.
        let change = ctx.push_frame(2, "c", None);
        assert_eq!(change.evicted, [1]);
        let roles: Vec<Role> = ctx.messages().iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::User]
        );
        assert_eq!(
            ctx.record_answer(1, None, String::new()),
            Err(ContextError::NoPendingStep { step: 1 })
        );
        assert_eq!(ctx.discard_pending(), Some(2));
        assert_eq!(ctx.discard_pending(), None);
    }

    #[test]
    fn token_budget_evicts_but_keeps_newest() {
        let mut cfg = config(10);
        let sys = MESSAGE_OVERHEAD_TOKENS + 1;
        let frame = MESSAGE_OVERHEAD_TOKENS + FRAME_OVERHEAD_TOKENS + 100;
        // Room for the system prompt and two bare frames.
        cfg.token_budget = Some(sys + 2 * frame);
        let mut ctx = Context::new(cfg);
        ctx.push_frame(0, "a", None);
        ctx.record_answer(0, None, "x".to_owned()).unwrap();
        let change = ctx.push_frame(1, "b", None);
        // Frame 0 plus its answer plus frame 1 exceed the budget.
        assert_eq!(change.evicted, [0]);
        assert!(!change.over_budget);
        let mut tiny = config(10);
        tiny.token_budget = Some(1);
        let mut ctx = Context::new(tiny);
        let change = ctx.push_frame(0, "a", None);
        assert!(change.evicted.is_empty() && change.over_budget);
    }

    #[test]
    fn counter_is_used_for_text() {
        let words: TokenCounter = Arc::new(|t: &str| t.split_whitespace().count());
        let mut ctx: Context<&str> = Context::with_counter(config(4), words);
        let base = ctx.tokens();
        ctx.set_instruction(Some("one two three".to_owned()));
        assert_eq!(ctx.tokens(), base + 3);
        ctx.clear();
        assert_eq!(ctx.instruction(), Some("one two three"));
    }
}
