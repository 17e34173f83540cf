from gconv.models.cnn import CNN, MLP, lecture_cnn, mnist_cnn
from gconv.models.gnn import GCN
from gconv.models.transfer import TransferModel
