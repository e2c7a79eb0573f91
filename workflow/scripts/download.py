from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.fetch.download import download

    download(snakemake.params.url, snakemake.output[0], sha256=snakemake.params.sha256)
