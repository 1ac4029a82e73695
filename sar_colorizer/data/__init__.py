"""Finding pairs, cutting chips, TFRecords and the tf.data input pipeline."""
