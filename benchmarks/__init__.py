"""Speed and memory of jaxcnn's train step side by side with Keras-on-JAX and torchvision (run.py)."""
