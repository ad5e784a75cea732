"""Training: the one epoch loop (:mod:`seqrec.training.loop`) and its stages, fine-tuning
(:mod:`seqrec.training.trainer`) and S3-Rec's pre-training (:mod:`seqrec.training.pretrain`); batches,
checkpoints and the loop state, DDP.

Layer 3: imports data, models, losses and evaluation, never a run folder or a report.
"""
