"""Training and what surrounds it: the loop (train) and its parts (config, optim, resume,
validation, distributed), LoRA fine-tuning (finetune), checkpoints and export, and the import of
SSM-TTM's released checkpoint (ssmttm)."""
