"""rnnuniv: universality and individuality in populations of recurrent networks."""
__version__ = "0.1.0"
