from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.data.convert import convert_location

    convert_location(
        snakemake.input.dataset,
        snakemake.output[0],
        modality=snakemake.wildcards.modality,
        location=int(snakemake.wildcards.location),
        jobs=snakemake.threads,
    )
