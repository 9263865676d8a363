"""The model registry. Builders register with ``@register_model()``; see ``scalinglab.models``."""

from scalinglab.registry import Registry

MODELS = Registry("model")
register_model = MODELS.register
