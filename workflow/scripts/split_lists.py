from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from pathlib import Path

    from avdistill.data.lists import make_lists

    make_lists(
        roots=snakemake.params.roots,
        out_dir=Path(snakemake.output[0]).parent,
        locations=snakemake.params.locations,
        num_samples=snakemake.params.num_samples,
        split_mode=snakemake.params.split_mode,
    )
