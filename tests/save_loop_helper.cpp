// Helper for test_kill_during_save: saves a large model to argv[1] over and over, every weight of save
// number i equal to i, until it is killed. Prints "saved i" after each completed save.
#include <cstdio>
#include <string>

#include <keras/keras.hpp>

#include "save_loop_model.hpp"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL.h5 FIRST_VALUE\n", argv[0]);
        return 2;
    }
    auto model = save_loop_model();
    for (int i = std::stoi(argv[2]);; ++i) {
        fill_weights(*model, static_cast<float>(i));
        model->save(argv[1]);
        std::printf("saved %d\n", i);
        std::fflush(stdout);
    }
}
