from gconv.data.augment import RandomCrop, RandomHorizontalFlip, RandomShift
from gconv.data.datasets import (
    MoleculeDataset,
    Standardizer,
    chembl_pic50,
    moleculenet,
    murcko_scaffold,
    nci_tpsa,
    predict_smiles,
    random_split,
    scaffold_split,
)
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
from gconv.data.molecules import (
    ATOM_FEATURE_DIM,
    ATOM_FEATURE_NAMES,
    BOND_FEATURE_DIM,
    BOND_FEATURE_NAMES,
    AtomFeaturizer,
    BondFeaturizer,
    featurize,
    mol_to_graph,
    smiles_to_graph,
)
