# Lumine Console：日本語。
app-title = Lumine コンソール
language = 言語

## Top bar and controls
start = 開始
pause = 一時停止
resume = 再開
stop = 停止
emergency-stop = 緊急停止
emergency-stop-hint = エージェントを直ちに止め、すべてのキーを離します（ホットキー { $key } でも可）。
target = 対象
target-arena = 練習アリーナ（内蔵）
target-window = ウィンドウ
refresh-windows = 更新
no-windows = ウィンドウが見つかりません。
model = モデル
model-bundled = 同梱モデル
model-folder = モデルフォルダー…
model-recent = 最近使ったもの
provider = 実行プロバイダー
device = デバイス
mode = モード
mode-instruction = 指示に従う
mode-reasoning = 推論
history = 履歴（フレーム）
instruction = 指示
instruction-hint = エージェントへの指示を入力（例：赤い宝箱を開けて）
instruction-send = 送信
take-control = 操作を引き継ぐ
hand-back = 操作を戻す
inject = アクションを注入
inject-hint = 例 0 0 0 ; W ; W ; W ; W ; W ; W
record = この実行を記録
record-folder = 記録フォルダー
settings = 設定

## Banners
operator-banner = オペレーターが操作中：エージェントは入力を送りません。
error-banner = エラー：{ $message }

## Panels
live-view = ライブ映像
no-frame = まだフレームがありません。「開始」を押してエージェントを動かしてください。
thought = 思考
no-thought = エージェントはまだ思考を書いていません。
thought-history = これまでの思考
step = ステップ { $step }
context = コンテキストウィンドウ
system-prompt = システムプロンプト
goal = 指示 / 最新の思考
no-goal = （なし）
tokens-of-budget = { $tokens } / { $budget } トークン
tokens = { $tokens } トークン
evicted = 退出中
pending = 決定中…
chunks = アクションチャンク
mouse = マウス
deadline-miss = 締め切り超過
latency = レイテンシ
latency-step = ステップごと（ミリ秒）
latency-chunk = チャンクの遅れ（ミリ秒）
budget-step = ステップ予算 200 ミリ秒
budget-chunk = チャンク予算 33 ミリ秒

## Status bar
state-idle = 待機中
state-launching = 起動中…
state-ready = 準備完了
state-running = 実行中
state-paused = 一時停止：{ $reason }
state-operator = オペレーター操作中
state-stopped = 停止：{ $reason }
state-error = エラー：{ $message }
fps = { $fps } FPS
misses = 締め切り超過 { $count } 回
steps = { $count } ステップ

## Pause and stop reasons
reason-command = オペレーターによる
reason-focus = 対象ウィンドウがフォーカスを失った
reason-window = ウィンドウをキャプチャできない（{ $detail }）
reason-emergency = 緊急停止
reason-interrupt = 中断
reason-finished = 完了

## What to do about errors
help-no-model = モデルが見つかりません。manifest.ron を含むモデルフォルダーを選ぶか、scripts/setup を実行して同梱モデルを復元してください。
help-capture = 対象ウィンドウをキャプチャできません。ウィンドウが開いていて最小化されていないことを確認し、もう一度「開始」を押してください。
help-provider = 実行プロバイダーを起動できません。CPU を選ぶか、scripts/setup-onnxruntime --gpu で GPU ランタイムを入れてください。
help-generic = 詳細は端末のログを見て、原因を直してからもう一度「開始」を押してください。
