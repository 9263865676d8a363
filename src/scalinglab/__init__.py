"""scalinglab: deep regression on physics simulations and the neural scaling laws that govern it."""

__version__ = "0.1.0"
