"""Input pipelines (TFDS + tf.data) and offline dataset preparation."""
