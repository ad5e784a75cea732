"""Training: the one epoch loop (:mod:`seqrec.training.loop`) and its stages, fine-tuning
(:mod:`seqrec.training.trainer`) and S3-Rec's pre-training (:mod:`seqrec.training.pretrain`, the loop;
:mod:`seqrec.training.pretrain_stage`, its checkpoints and the start of fine-tuning); batches,
checkpoints and the loop state, DDP.

Layer 3: imports data, models, losses and evaluation, never a run folder or a report.
"""
