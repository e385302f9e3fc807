// The CUDA execution model on the host, enough for our kernels (see run.sh): every thread of a
// block is a std::thread (threadIdx / blockIdx thread-local), __syncthreads a std::barrier,
// __shared__ arrays are statics (blocks run one after another, so one block owns them at a time),
// atomicAdd takes a lock. The grid is capped at 2 blocks: the kernels loop over the rest.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#define __global__
#define __device__
#define __host__
#define __shared__ static

struct EmulatedDim {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local EmulatedDim threadIdx, blockIdx;
inline EmulatedDim blockDim, gridDim;
inline std::barrier<>* emulated_block_barrier = nullptr;
inline std::mutex emulated_atomics;

inline void __syncthreads() { emulated_block_barrier->arrive_and_wait(); }

template <typename T>
T atomicAdd(T* address, T value) {
    std::lock_guard<std::mutex> lock(emulated_atomics);
    const T old = *address;
    *address = old + value;
    return old;
}

template <typename Kernel>
void emulate_launch(unsigned grid, unsigned block, Kernel kernel) {
    gridDim.x = std::min(grid, 2u);
    blockDim.x = block;
    for (unsigned b = 0; b < gridDim.x; ++b) {
        std::barrier<> barrier(block);
        emulated_block_barrier = &barrier;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; ++t)
            threads.emplace_back([&, b, t] {
                blockIdx.x = b;
                threadIdx.x = t;
                kernel();
            });
        for (auto& thread : threads) thread.join();
    }
}
