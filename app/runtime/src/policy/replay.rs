//! [`ReplayPolicy`]: plays back the actions of a recorded trajectory.

use std::path::Path;

use lumine_action::{KeyVocabulary, StreamEvent, Turn, parse_action};

use super::{Observation, Policy, PolicyError, stream_turn};
use crate::trajectory::{Trajectory, TrajectoryError};

/// Plays a trajectory's steps in order (agent and operator steps alike),
/// one per step; ends with [`PolicyError::Exhausted`].
#[derive(Debug, Clone)]
pub struct ReplayPolicy {
    name: String,
    turns: Vec<Turn>,
    next: usize,
}

impl ReplayPolicy {
    /// Reads the trajectory in `dir` and checks every action against
    /// `vocab` before anything is played.
    ///
    /// # Errors
    /// The trajectory is unreadable, or a step's action does not parse (the
    /// step index is named).
    pub fn open(dir: &Path, vocab: &KeyVocabulary) -> Result<ReplayPolicy, TrajectoryError> {
        let trajectory = Trajectory::open(dir)?;
        let mut turns = Vec::with_capacity(trajectory.steps.len());
        for step in &trajectory.steps {
            let action =
                parse_action(&step.action, vocab).map_err(|e| TrajectoryError::Format {
                    path: dir.join(crate::trajectory::STEPS_FILE),
                    message: format!("step {}: {:?}: {e}", step.step, step.action),
                })?;
            turns.push(Turn {
                thought: step.thought.clone(),
                action,
            });
        }
        Ok(ReplayPolicy {
            name: dir.display().to_string(),
            turns,
            next: 0,
        })
    }

    /// Number of steps to play.
    #[must_use]
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    /// True when there is nothing to play.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

impl Policy for ReplayPolicy {
    fn describe(&self) -> String {
        format!("replay:{}", self.name)
    }

    fn next_turn(
        &mut self,
        _observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError> {
        let turn = self.turns.get(self.next).ok_or(PolicyError::Exhausted)?;
        self.next += 1;
        stream_turn(turn, out);
        Ok(turn.clone())
    }
}
