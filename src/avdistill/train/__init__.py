"""Training (rules/stage1.smk, stage2.smk): stage 1 from labels (`fit`), its test
(`evaluate`), the teachers' cached logits (`teacher_logits`) and stage-2 distillation
(`distillation`); `options`, `session` and `weights` are what every job shares."""
