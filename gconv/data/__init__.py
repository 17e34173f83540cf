from gconv.data.augment import RandomCrop, RandomHorizontalFlip, RandomShift
from gconv.data.grid import (
    GridGraph,
    graph_to_image,
    grid_graph,
    image_to_graph,
    images_to_nodes,
    nodes_to_images,
)
from gconv.data.images import (
    CLASS_NAMES,
    FASHION_CLASSES,
    MNIST,
    MNIST_CLASSES,
    STL10,
    STL10_CLASSES,
    FashionMNIST,
    load_image_dataset,
    mnist5k,
    to_tensors,
)
from gconv.data.loader import TensorLoader
