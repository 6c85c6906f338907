"""Running the stages as Slurm job arrays: rendering job scripts from templates (package
data in templates/), shard plans, submission and the run report.
cs_sync.slurm.client is the only module that runs Slurm commands.

May import: cs_sync.core, cs_sync.inputs, cs_sync.remote, cs_sync.upload, cs_sync.download, cs_sync.index,
cs_sync.status (to plan shards exactly as the stages will).
"""
