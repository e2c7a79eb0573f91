from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from pathlib import Path

    from avdistill.data.stats import write_spectrogram_stats

    write_spectrogram_stats(
        list_path=snakemake.input.training,
        audio_root=snakemake.params.audio_root,
        out_dir=Path(snakemake.output.global_min).parent,
        total_length=snakemake.params.total_length,
        resampler=snakemake.params.resampler,
    )
