# Public pretrained weights converted to named arrays (.npz keyed by Keras variable path),
# loaded by `init: soundnet` (SoundNet5) and `init: imagenet` (the ResNet-50s).


rule convert_soundnet:
    input:
        "resources/downloads/soundnet_models_public.zip",
    output:
        "resources/pretrained/soundnet5.npz",
    log:
        "results/logs/pretrained/soundnet5.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("fetch.pretrained"),
        member="soundnet5_final.t7",
    script:
        "../workflow/scripts/convert_pretrained.py"


rule convert_resnet:
    input:
        "resources/downloads/resnet_v1_50_2016_08_28.tar.gz",
    output:
        "resources/pretrained/resnet_v1_50.weights.npz",
    log:
        "results/logs/pretrained/resnet_v1_50.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("fetch.pretrained"),
        member="resnet_v1_50.ckpt",
    script:
        "../workflow/scripts/convert_pretrained.py"
