# Lumine Console：简体中文。
app-title = Lumine 控制台
language = 语言

## Top bar and controls
start = 开始
pause = 暂停
resume = 继续
stop = 停止
emergency-stop = 紧急停止
emergency-stop-hint = 立即停止智能体并松开所有按键（也可用热键 { $key }）。
target = 目标
target-arena = 练习场（内置）
target-window = 窗口
refresh-windows = 刷新
no-windows = 没有找到窗口。
model = 模型
model-bundled = 内置模型
model-folder = 模型文件夹…
model-recent = 最近使用
provider = 执行后端
device = 设备
mode = 模式
mode-instruction = 指令跟随
mode-reasoning = 推理
history = 历史（帧）
instruction = 指令
instruction-hint = 告诉智能体要做什么，例如：打开红色箱子
instruction-send = 发送
take-control = 接管控制
hand-back = 交还控制
inject = 注入动作
inject-hint = 例如 0 0 0 ; W ; W ; W ; W ; W ; W
record = 录制本次运行
record-folder = 录制文件夹
settings = 设置

## Banners
operator-banner = 操作员正在控制：智能体不会输入任何操作。
error-banner = 错误：{ $message }

## Panels
live-view = 实时画面
no-frame = 还没有画面。按“开始”运行智能体。
thought = 思考
no-thought = 智能体还没有写出思考。
thought-history = 之前的思考
step = 第 { $step } 步
context = 上下文窗口
system-prompt = 系统提示词
goal = 指令 / 最新思考
no-goal = （无）
tokens-of-budget = { $tokens } / { $budget } 个 token
tokens = { $tokens } 个 token
evicted = 移出中
pending = 决策中…
chunks = 动作块
mouse = 鼠标
deadline-miss = 错过截止时间
latency = 延迟
latency-step = 每步（毫秒）
latency-chunk = 动作块延迟（毫秒）
budget-step = 每步预算 200 毫秒
budget-chunk = 动作块预算 33 毫秒

## Status bar
state-idle = 空闲
state-launching = 正在启动…
state-ready = 就绪
state-running = 运行中
state-paused = 已暂停：{ $reason }
state-operator = 操作员控制
state-stopped = 已停止：{ $reason }
state-error = 错误：{ $message }
fps = { $fps } 帧/秒
misses = 错过截止 { $count } 次
steps = { $count } 步

## Pause and stop reasons
reason-command = 由操作员
reason-focus = 目标窗口失去焦点
reason-window = 无法捕获窗口（{ $detail }）
reason-emergency = 紧急停止
reason-interrupt = 被中断
reason-finished = 已完成

## What to do about errors
help-no-model = 没有找到模型。请选择一个包含 manifest.ron 的模型文件夹，或运行 scripts/setup 恢复内置模型。
help-capture = 无法捕获目标窗口。请确认窗口已打开且未最小化，然后再按“开始”。
help-provider = 执行后端无法启动。请选择 CPU，或用 scripts/setup-onnxruntime --gpu 安装 GPU 运行库。
help-generic = 详细信息见终端日志；排除原因后再按“开始”。
