"""The pipeline: read → validate & transform → deduplicate → load → archive.

``pipeline_execute`` below is the whole of it, step by step. Each step
streams a chunk at a time, so memory does not grow with the file:

1. **read** (``ingestion.reader``): decode the raw file and yield rows with line numbers.
2. **map columns** (``validate.columns_map``): match headers to schema fields;
   a missing required or duplicate column fails the run before any row.
3. **validate** (``columnar.ColumnarValidator``, a chunk at a time, exactly as
   ``validate.RowValidator`` does row by row): clean, transform and check each
   row; bad rows become rejected rows with their reasons.
4. **deduplicate** (``load.SeenValues``): a key (or ``unique`` value) seen
   earlier in the file rejects the later row.
5. **load** (``load.records_load``): upsert by natural key, skipping rows
   whose content is unchanged; rejected rows, counters and the checkpoint
   commit in the same transaction.
6. **write** (``output.py``): append the valid rows to the processed file.
7. **end**: publish the processed file, then hand the run's outcome to
   ``end`` (``processing.lifecycle.run_finish``), which records it, moves
   the raw file to ``archive/<dataset>/``, frees the scratch space and
   queues the notification.

Steps 1-3 run ahead in forked child processes (``chunks.ValidatedChunks``;
a thread where forking is not allowed) while steps 4-6 of the previous
chunk run against the database in the caller's transaction.
"""

from .run import PipelineAbort, ProgressCallback, RunEnd, pipeline_execute

__all__ = ["PipelineAbort", "ProgressCallback", "RunEnd", "pipeline_execute"]
