from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from pathlib import Path

    from avdistill.convert import convert_dataset

    dataset = Path(snakemake.input.dataset)
    convert_dataset(
        mat_root=dataset / "matfiles",
        sync_root=dataset / "sync",
        out_root=Path(snakemake.output[0]).parent,
        modalities=[snakemake.wildcards.modality],
        locations=[int(snakemake.wildcards.location)],
        jobs=snakemake.threads,
    )
