"""One run, from a `RunConfig` to a `RunResult`: the settings (`config`, `presets`), the strategies
(which layer groups train, how fast), the loop (`trainer`), a whole run for any task (`recipe`,
`tasks`, `mlm_live`), and what it returns (`finetuned`, `forgetting`). Runs here know nothing of
queues, learners or pages (tlcore.serve, studio).
"""
