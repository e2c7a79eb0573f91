# Every file the workflow fetches: the dataset archive (dataset.source: url) and the public
# pretrained weights (pretrained.*). One job per file, however many jobs need it. A file
# is fetched again only when its URL or checksum changes (both are params); the partial
# file survives a failed job, so a restart resumes it.


rule download:
    output:
        "resources/downloads/{download}",
    log:
        "results/logs/downloads/{download}.log",
    # Not a param on purpose: how often to try does not change the file, so editing it
    # must not refetch anything.
    retries: config["downloads"]["retries"]
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("fetch.download"),
        url=download_setting("url"),
        sha256=download_setting("sha256"),
    script:
        "../workflow/scripts/download.py"
