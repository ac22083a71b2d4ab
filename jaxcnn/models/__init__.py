"""Model families; importing this package registers every model in jaxcnn.registry."""

from jaxcnn.models import lenet  # noqa: F401
