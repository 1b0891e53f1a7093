#include <stdio.h>
#include <time.h>
#include <math.h>
#include "common/fast_sincos.h"
#include "est.h"
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
__attribute__((noinline)) void f(const double*x,double*s,double*c){ qode_sincos_array(x,s,c,32);}
__attribute__((noinline)) void g(const double*x,double*s,double*c){ est_sincos_array(x,s,c,32);}
int main(){ double x[32],s[32],c[32],acc=0;
 for(int rep=0;rep<3;rep++){
 for(int i=0;i<32;i++)x[i]=0.1*i-1.3;
 double t=now(); for(int k=0;k<1000000;k++){ f(x,s,c); acc+=s[3]; x[0]+=1e-9;} t=now()-t;
 printf("taylor horner %.2f ns per sincos\n", t/32e6*1e9);
 t=now(); for(int k=0;k<1000000;k++){ g(x,s,c); acc+=s[3]; x[0]+=1e-9;} t=now()-t;
 printf("taylor estrin %.2f ns per sincos\n", t/32e6*1e9);}
 /* accuracy vs libm (long double) */
 double worst_s=0, worst_c=0, w2s=0, w2c=0;
 for (int i=0;i<2000000;i++){ double v = -20.0 + 40.0*i/2000000.0; double a,b,a2,b2; qode_sincos_reduced(v,&a,&b); est_sincos_reduced(v,&a2,&b2);
   long double S=sinl(v), C=cosl(v);
   double us = fabs((double)(a-S))/ldexp(1.0, ilogb(fabs((double)S))-52), uc=fabs((double)(b-C))/ldexp(1.0, ilogb(fabs((double)C))-52);
   double us2 = fabs((double)(a2-S))/ldexp(1.0, ilogb(fabs((double)S))-52), uc2=fabs((double)(b2-C))/ldexp(1.0, ilogb(fabs((double)C))-52);
   if(us>worst_s)worst_s=us; if(uc>worst_c)worst_c=uc; if(us2>w2s)w2s=us2; if(uc2>w2c)w2c=uc2; }
 printf("max ulp: horner sin %.2f cos %.2f; estrin sin %.2f cos %.2f (%g)\n", worst_s, worst_c, w2s, w2c, acc);
}
