"""One run, from a `RunConfig` to a `RunResult`: the settings (`config`, `presets`), the strategies
(which layer groups train, how fast), the loop (`trainer`, on the `device` and `precision` it
picks, over the images' `image_batches`), a whole run for any task (`recipe`, `tasks`; the text family's tasks are tlcore.text's), what it returns
(`finetuned`, `forgetting`), and how long it will take on this machine (`time_estimate`). Runs here
know nothing of queues, learners or pages (tlcore.serve, studio).
"""
