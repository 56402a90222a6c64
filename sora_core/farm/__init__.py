"""Shot batches on a render farm: ``sora farm`` on Ray, plus the contract other farms call.

Light half: nothing here imports torch, and Ray is imported only when a batch actually runs,
so ``sora --help`` and the batch planning work without it.

- :mod:`.batch`      reads shot specs (files, folders, batch JSON) and their dependencies
- :mod:`.scheduler`  drives a batch over an executor: dependencies, retries, cancel
- :mod:`.shot_task`  what one task runs on a node: the same WorkerClient path as ``sora run``
- :mod:`.ray_runner` the Ray executor: one task per shot, a GPU or a custom resource each
- :mod:`.summary`    the batch summary JSON and the batch exit code
- :mod:`.cli`        ``sora farm``
"""
