"""The data stage (rules/dataset.smk, tfrecords.smk, splits.smk): the synthetic dataset or the
real one's raw files, TFRecords per modality, split lists and spectrogram statistics, and the
tf.data input pipeline every network reads."""
