from gconv.models.cnn import CNN, MLP, lecture_cnn, mnist_cnn
