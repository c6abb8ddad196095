"""Your solutions to the convnet exercises: fill in the functions that raise NotImplementedError."""
