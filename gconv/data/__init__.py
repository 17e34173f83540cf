from gconv.data.loader import TensorLoader
