# Lumine Console: English (the reference locale: every other locale has exactly these keys).
app-title = Lumine Console
language = Language

## Top bar and controls
start = Start
pause = Pause
resume = Resume
stop = Stop
emergency-stop = EMERGENCY STOP
emergency-stop-hint = Stops the agent at once and releases every key (also the hotkey { $key }).
target = Target
target-arena = Practice arena (built in)
target-window = Window
refresh-windows = Refresh
no-windows = No windows found.
model = Model
model-bundled = Bundled model
model-folder = Model folder…
model-recent = Recent
provider = Provider
device = Device
mode = Mode
mode-instruction = Instruction following
mode-reasoning = Reasoning
history = History (frames)
instruction = Instruction
instruction-hint = Tell the agent what to do, e.g. open the red chest
instruction-send = Send
take-control = Take control
hand-back = Hand back
inject = Inject action
inject-hint = e.g. 0 0 0 ; W ; W ; W ; W ; W ; W
record = Record this run
record-folder = Recording folder
settings = Settings

## Banners
operator-banner = OPERATOR HAS CONTROL: the agent is not injecting anything.
error-banner = Error: { $message }

## Panels
live-view = Live view
no-frame = No frame yet. Press Start to run the agent.
thought = Thought
no-thought = The agent has not written a thought yet.
thought-history = Earlier thoughts
step = step { $step }
context = Context window
system-prompt = System prompt
goal = Instruction / latest thought
no-goal = (none)
tokens-of-budget = { $tokens } tokens of { $budget }
tokens = { $tokens } tokens
evicted = leaving
pending = deciding…
chunks = Action chunks
mouse = mouse
deadline-miss = deadline miss
latency = Latency
latency-step = Per step (ms)
latency-chunk = Chunk lateness (ms)
budget-step = 200 ms step budget
budget-chunk = 33 ms chunk budget

## Status bar
state-idle = Idle
state-launching = Starting…
state-ready = Ready
state-running = Running
state-paused = Paused: { $reason }
state-operator = Operator control
state-stopped = Stopped: { $reason }
state-error = Error: { $message }
fps = { $fps } FPS
misses = { $count } deadline misses
steps = { $count } steps

## Pause and stop reasons
reason-command = by the operator
reason-focus = the target window lost focus
reason-window = the window cannot be captured ({ $detail })
reason-emergency = emergency stop
reason-interrupt = interrupted
reason-finished = finished

## What to do about errors
help-no-model = No model was found. Pick a model folder (one holding manifest.ron), or run scripts/setup to restore the bundled one.
help-capture = The target window could not be captured. Check that it is open and not minimised, then press Start again.
help-provider = The execution provider could not start. Choose CPU, or install the GPU runtime with scripts/setup-onnxruntime --gpu.
help-generic = See the log in the terminal for details, fix the cause, then press Start again.
