# convert_soundnet / convert_resnet: a downloaded archive → resources/pretrained/*.npz.
from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.fetch.pretrained import convert_resnet, convert_soundnet

    convert = convert_soundnet if snakemake.rule == "convert_soundnet" else convert_resnet
    convert(snakemake.input[0], snakemake.output[0], member=snakemake.params.member)
