from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from avdistill.data.synth import SynthOptions, synthesize_dataset

    options = SynthOptions(
        locations=tuple(snakemake.params.options["locations"]),
        subjects=snakemake.params.options["subjects"],
        actions=tuple(snakemake.params.options["actions"]),
        seconds=snakemake.params.options["seconds"],
        frame_size=tuple(snakemake.params.options["frame_size"]),
        seed=snakemake.params.seed,
    )
    synthesize_dataset(snakemake.output[0], options, jobs=snakemake.threads)
